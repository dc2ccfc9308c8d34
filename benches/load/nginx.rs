//! Plain nginx as the reference proxy of the load benchmark: Debian's package, a
//! `proxy_pass` to the same backend with upstream keepalive, 64 KiB buffers, no temp files,
//! every request logged, no cap on requests per connection, a listening socket per worker
//! (`reuseport`, so that the kernel shares connections out among the workers as the
//! gateway shares them among its threads); with TLS (OpenSSL) on a second port;
//! and on a third, the reference cache: `proxy_cache` on disk (the page cache keeps it in
//! memory), `slice 1m` and `proxy_cache_lock on`, as nginx documents for large media.
//! It neither signs nor checks tokens: the URLs it is given are presigned.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::tls::Certificate;

/// A running nginx; dropping it stops the master and its workers (a killed master would
/// leave its workers behind).
pub struct Nginx(Child);

impl Nginx {
    /// The master's pid and its workers'.
    pub fn processes(&self) -> Vec<u32> {
        let master = self.0.id();
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
        std::iter::once(master)
            .chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast shutdown, which stops the workers too.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// nginx serving on `port`, and with `tls` on its port too (HTTP/1.1 and HTTP/2 by ALPN),
/// proxying to the backend on `backend_port`; `None` when nginx is not installed
/// (`apt-get install nginx-light`).
pub fn start(
    dir: &Path,
    port: u16,
    tls: Option<(&Certificate, u16)>,
    cache_port: u16,
    backend_port: u16,
    workers: &str,
) -> Option<Nginx> {
    let root = dir.join("nginx");
    std::fs::create_dir_all(root.join("tmp")).ok()?;
    let tmp = root.join("tmp");
    let tmp = tmp.display();
    // How both proxies reach the backend: kept-alive connections, 64 KiB buffers.
    let upstream = format!(
        r#"
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host 127.0.0.1:{backend_port};
            proxy_buffer_size 64k;
            proxy_buffers 8 64k;
            proxy_busy_buffers_size 128k;"#
    );
    // As the gateway: no cap on requests per kept-alive connection (nginx's default of 1,000
    // would add a reconnect, and over TLS a handshake, every 1,000 requests).
    let location = format!(
        r#"
        keepalive_requests 1000000;
        location / {{{upstream}
            proxy_max_temp_file_size 0;
        }}"#
    );
    let tls_server = tls.map_or(String::new(), |(cert, tls_port)| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{tls_port} ssl http2 reuseport;
        ssl_certificate {};
        ssl_certificate_key {};
        ssl_protocols TLSv1.2 TLSv1.3;
        {location}
    }}"#,
            cert.cert.display(),
            cert.key.display()
        )
    });
    let cache_dir = root.join("cache");
    let cached = format!(
        r#"
    proxy_cache_path {} levels=1:2 keys_zone=assets:16m max_size=1g inactive=1h use_temp_path=off;
    server {{
        listen 127.0.0.1:{cache_port} reuseport;
        keepalive_requests 1000000;
        location / {{
            slice 1m;
            proxy_cache assets;
            proxy_cache_key $uri$is_args$args$slice_range;
            proxy_set_header Range $slice_range;
            proxy_cache_valid 200 206 1h;
            proxy_cache_lock on;{upstream}
        }}
    }}"#,
        cache_dir.display()
    );
    let config = format!(
        r#"
worker_processes {workers};
pid {root}/nginx.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
    # Every request logged to a file, as the gateway's access log is; buffered, as the
    # gateway writes its lines in batches.
    access_log {root}/access.log combined buffer=64k flush=1s;
    client_body_temp_path {tmp};
    proxy_temp_path {tmp};
    fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp};
    scgi_temp_path {tmp};
    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        {location}
    }}
    {tls_server}
    {cached}
}}
"#,
        root = root.display()
    );
    let path = root.join("nginx.conf");
    std::fs::write(&path, config).ok()?;
    Command::new("nginx")
        .args(["-e", "stderr", "-p"])
        .arg(&root)
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off; user root;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Nginx)
}
