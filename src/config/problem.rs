//! How a broken file is reported: a TOML syntax error by line and key, a value of the wrong
//! shape by its key path and the type expected. Never the value itself: a mistyped value may
//! be a secret, or come from an environment variable that holds one.

use std::collections::HashMap;

use super::ConfigError;

/// A syntax error of `text`: `server.listen: line 3: not valid TOML (...)`.
pub fn syntax(text: &str, err: &toml::de::Error) -> ConfigError {
    let what = one_line(err.message());
    match err.span() {
        Some(span) => {
            let (line, key) = locate(text, span.start);
            let key = key.unwrap_or_else(|| "file".into());
            ConfigError::at(key, format!("line {line}: not valid TOML ({what})"))
        }
        None => ConfigError::at("file", format!("not valid TOML ({what})")),
    }
}

/// A value the file model cannot take, at its key path.
pub fn shape(err: &serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let path = err.path().to_string();
    let key = if path == "." { "file".to_string() } else { path };
    ConfigError::at(key, value_free(err.inner().message()))
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// serde's messages quote the offending value ("invalid type: string \"hunter2\", expected
/// usize"): keep what was expected and the kind of value found, drop the value.
pub fn value_free(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = rest.rsplit_once(", expected ").unwrap_or(("a value", rest));
            let kind = found.split(['`', '"']).next().unwrap_or("").trim();
            let kind = if kind.is_empty() { "a value" } else { kind };
            return format!("expected {expected}, found {kind}");
        }
    }
    if message.starts_with("unknown variant ") {
        let expected = message.rsplit_once(", expected ").map_or("another value", |(_, e)| e);
        return format!("unknown value, expected {expected}");
    }
    one_line(message)
}

/// The line number (1-based) of byte `offset`, and the key written there, as a dotted path
/// with array-of-tables indices (`orgs[1].storages[0].endpoint`).
fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let offset = offset.min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let mut tables = Tables::default();
    let mut table = String::new();
    for raw in text.lines().take(line - 1) {
        if let Some(header) = Tables::header(raw) {
            table = tables.enter(header);
        }
    }
    let here = text.lines().nth(line - 1).unwrap_or("");
    if let Some(header) = Tables::header(here) {
        return (line, Some(tables.enter(header)));
    }
    let key = here
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    let path = match (key, table.is_empty()) {
        (Some(key), true) => Some(key),
        (Some(key), false) => Some(format!("{table}.{key}")),
        (None, false) => Some(table),
        (None, true) => None,
    };
    (line, path)
}

/// The table headers seen so far, counting arrays of tables.
#[derive(Default)]
struct Tables {
    /// Index of the current element of each array of tables, by dotted name.
    arrays: HashMap<String, usize>,
}

impl Tables {
    /// `(name, is_array)` of a `[name]` or `[[name]]` line.
    fn header(line: &str) -> Option<(String, bool)> {
        let line = line.trim();
        let line = line.split_once('#').map_or(line, |(l, _)| l).trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            return Some((name.trim().to_string(), true));
        }
        let name = line.strip_prefix('[')?.strip_suffix(']')?;
        Some((name.trim().to_string(), false))
    }

    /// Enters a table; returns its path with indices.
    fn enter(&mut self, (name, is_array): (String, bool)) -> String {
        if is_array {
            let next = self.arrays.get(&name).map_or(0, |i| i + 1);
            let nested = format!("{name}.");
            self.arrays.retain(|k, _| !k.starts_with(&nested));
            self.arrays.insert(name.clone(), next);
        }
        let mut path = String::new();
        let mut prefix = String::new();
        for part in name.split('.') {
            if !prefix.is_empty() {
                prefix.push('.');
                path.push('.');
            }
            prefix.push_str(part);
            path.push_str(part);
            if let Some(i) = self.arrays.get(&prefix) {
                path.push_str(&format!("[{i}]"));
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_their_values() {
        assert_eq!(
            value_free("invalid type: string \"hunter2, expected x\", expected usize"),
            "expected usize, found string"
        );
        assert_eq!(
            value_free("invalid type: integer `42`, expected a string"),
            "expected a string, found integer"
        );
        assert_eq!(
            value_free("unknown variant `s3cret`, expected `access_key` or `assume_role`"),
            "unknown value, expected `access_key` or `assume_role`"
        );
        assert_eq!(value_free("missing field `id`"), "missing field `id`");
    }

    #[test]
    fn syntax_errors_name_line_and_key() {
        let text = "[server]\nlisten = \"0.0.0.0:1\"\nheader_read_timeout = 10s\n";
        let err = toml::from_str::<toml::Value>(text).unwrap_err();
        let e = syntax(text, &err);
        assert_eq!(e.key, "server.header_read_timeout");
        assert!(e.message.starts_with("line 3: not valid TOML"), "{e}");
    }

    #[test]
    fn keys_in_arrays_of_tables_carry_their_index() {
        let text = "[[orgs]]\nid = \"a\"\n[[orgs]]\nid = \"b\"\n[[orgs.storages]]\nid = \"s\"\n[[orgs.storages]]\nendpoint = x\n";
        assert_eq!(
            locate(text, text.find("x\n").unwrap()),
            (8, Some("orgs[1].storages[1].endpoint".to_string()))
        );
        assert_eq!(locate("a = 1\nb = @", 10), (2, Some("b".to_string())));
        assert_eq!(locate("[auth]\n[[", 9), (2, Some("auth".to_string())));
    }
}
