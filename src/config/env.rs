//! `${NAME}` interpolation of string values, through a lookup function so that tests (and the
//! demo) never touch the process environment.

use super::ConfigError;

/// Where `${NAME}` values come from: the process environment in production, a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Replaces every string in `value` (recursively) that references `${NAME}`.
/// `path` names the value for error messages (`orgs[0].storages[1].endpoint`).
pub fn interpolate_value(value: &mut toml::Value, path: &str, lookup: Lookup<'_>) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => *s = interpolate(s, lookup).map_err(|m| ConfigError::at(path, m))?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, &format!("{path}[{i}]"), lookup)?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                interpolate_value(item, &child, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands `${NAME}` references in one string. `$$` is a literal `$`; a `$` not followed by
/// `{` or `$` is kept as it is. A missing variable or an unterminated reference is an error.
pub fn interpolate(input: &str, lookup: Lookup<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or("unterminated ${ in value")?;
            let name = &tail[..end];
            if !is_env_name(name) {
                return Err(format!("`${{{name}}}` is not a valid environment variable reference"));
            }
            let value = lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_references_and_keeps_the_rest() {
        assert_eq!(interpolate("a-${SECRET}-b", &env).unwrap(), "a-s3cr3t-b");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(interpolate("cost $5 and $$", &env).unwrap(), "cost $5 and $");
        assert_eq!(interpolate("$${SECRET}", &env).unwrap(), "${SECRET}");
    }

    #[test]
    fn missing_variable_is_named_in_the_error() {
        let err = interpolate("${NOPE}", &env).unwrap_err();
        assert!(err.contains("NOPE"), "{err}");
    }

    #[test]
    fn unterminated_and_invalid_references_are_errors() {
        assert!(interpolate("${SECRET", &env).is_err());
        assert!(interpolate("${1A}", &env).is_err());
        assert!(interpolate("${A-B}", &env).is_err());
    }

    #[test]
    fn interpolation_error_names_the_key() {
        let mut v: toml::Value = toml::from_str("[auth]\nkeys = [{ secret = \"${NOPE}\" }]").unwrap();
        let err = interpolate_value(&mut v, "", &env).unwrap_err();
        assert_eq!(err.key, "auth.keys[0].secret");
    }
}
