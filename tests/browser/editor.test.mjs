// The labeling editor's view, in a real browser: headless Chromium (Debian's, never a
// downloaded one) driven by playwright-core opens the demo editor page, served on its own
// origin, and checks that the image decodes, the video seeks with 206 answers, fetch() with
// a bearer token reads Content-Range; and that another origin or an expired token fails.
// Screenshots land in target/browser-artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '../..');
const binary = process.env.ASSETGATE_BIN ?? path.join(root, 'target/debug/assetgate');
const artifacts = path.join(root, 'target/browser-artifacts');
const flags = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic'];

let demo;
let editorUrl;
let context;
let otherOrigin;

/** Starts `assetgate demo` on free ports and reads the editor's URL from its banner. */
function startDemo() {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['demo', '--listen', '127.0.0.1:0', '--editor-listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the demo did not start: ${out}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/Open the demo editor[^:]*: (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ child, editor: match[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`the demo exited with ${code}: ${out}`)));
  });
}

/** The same page and config from another origin, which the gateway does not allow. */
function startOtherOrigin(editor) {
  const server = http.createServer(async (req, res) => {
    const upstream = await fetch(new URL(req.url, editor));
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  ({ child: demo, editor: editorUrl } = await startDemo());
  otherOrigin = await startOtherOrigin(editorUrl);
  context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'assetgate-chromium-')), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: flags,
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await context?.close();
  otherOrigin?.close();
  demo?.kill();
});

/** Opens `url`, waits until the page has tried the image and fetch, returns the page. */
async function open(url, responses = []) {
  const page = await context.newPage();
  page.on('response', (r) => responses.push({ url: r.url(), status: r.status() }));
  await page.goto(url);
  await page.waitForFunction(() => window.__results?.image !== null && window.__results?.fetch !== null, null, { timeout: 20_000 });
  return page;
}

test('the editor loads the image, seeks the video and fetches with a bearer token', async () => {
  const responses = [];
  const page = await open(editorUrl, responses);
  const results = await page.evaluate(() => window.__results);
  assert.equal(results.image.ok, true, 'image failed');
  assert.ok(results.image.width > 0, 'image not decoded');

  await page.waitForFunction(() => document.getElementById('video').readyState >= 1 && document.getElementById('video').duration > 0, null, { timeout: 20_000 });
  await page.click('#seek');
  await page.waitForFunction(() => window.__results.video.seeked && document.getElementById('video').readyState >= 2, null, { timeout: 20_000 });
  const video = await page.evaluate(() => {
    const v = document.getElementById('video');
    return { time: v.currentTime, duration: v.duration, readyState: v.readyState };
  });
  assert.ok(video.readyState >= 2, `video readyState ${video.readyState}`);
  assert.ok(Math.abs(video.time - video.duration / 2) < 1, `seeked to ${video.time} of ${video.duration}`);
  const ranged = responses.filter((r) => r.url.includes('/videos/') && r.status === 206);
  assert.ok(ranged.length >= 1, `no 206 answers for the video: ${JSON.stringify(responses)}`);

  assert.equal(results.fetch.ok, true, JSON.stringify(results.fetch));
  assert.match(results.fetch.contentRange ?? '', /^bytes 0-\d+\/\d+$/);
  assert.ok(results.fetch.etag, 'ETag not readable');
  assert.ok(results.fetch.requestId, 'X-Request-Id not readable');
  await page.screenshot({ path: path.join(artifacts, 'editor-allowed-origin.png'), fullPage: true });
  await page.close();
});

test('the same page on an origin the gateway does not allow loads nothing', async () => {
  const { port } = otherOrigin.address();
  const page = await open(`http://127.0.0.1:${port}/`);
  const results = await page.evaluate(() => window.__results);
  assert.equal(results.image.ok, false, 'the image loaded from a disallowed origin');
  assert.equal(results.fetch.ok, false, 'fetch succeeded from a disallowed origin');
  assert.equal(results.fetch.status, 0, 'a refused CORS response must not be readable');
  await page.waitForFunction(() => window.__results.video.error === true, null, { timeout: 20_000 });
  await page.screenshot({ path: path.join(artifacts, 'editor-disallowed-origin.png'), fullPage: true });
  await page.close();
});

test('an expired token fails, with a readable 401', async () => {
  const page = await open(`${editorUrl}?token=expired`);
  const results = await page.evaluate(() => window.__results);
  assert.equal(results.image.ok, false, 'the image loaded with an expired token');
  assert.equal(results.fetch.status, 401);
  assert.match(results.fetch.body, /expired_token/);
  await page.screenshot({ path: path.join(artifacts, 'editor-expired-token.png'), fullPage: true });
  await page.close();
});
