//! A storage as written: a JSON object (an admin API body, or a configuration file's
//! `[[orgs.storages]]` table), read field by field into typed values, every problem recorded
//! against the field's name as the writer spelled it. The two writers differ only in
//! spelling: the configuration file uses snake_case keys and a `credentials` table with a
//! `type`, and refuses unknown keys; the admin API takes camelCase (and the Ango API v2 and
//! SDK shapes: `provider: "AWS"`, `publicKey`/`privateKey`, credentials at the top level) and
//! ignores keys it does not know.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::upstream::Endpoint;

/// Who builds the storage, and with what.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub style: Style,
    /// The org's own external ID, for a delegated storage of the admin API (README "Admin API": the
    /// gateway, not the customer, chooses external IDs).
    pub org_external_id: Option<&'a str>,
    /// Whether the gateway has an Entra app (`[azure]`), without which Entra delegation
    /// cannot work.
    pub entra_app: bool,
    /// Where tokens of the gateway's own identity may go: the endpoints Entra-delegated and
    /// impersonating storages may have.
    pub destinations: &'a crate::credentials::TokenDestinations,
}

/// Field name -> what is wrong with it.
pub type Fields = BTreeMap<String, String>;

/// Who wrote the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Config,
    Api,
}

/// A field's names: the configuration file's, and the admin API's aliases (first preferred).
#[derive(Debug, Clone, Copy)]
pub struct Name {
    pub config: &'static str,
    pub api: &'static [&'static str],
}

/// The configuration file's `credentials.type`.
const TYPE: Name = Name {
    config: "type",
    api: &[],
};

/// One kind of credentials a provider takes (an access key, a role, a key file...).
pub struct CredentialKind<'f, T> {
    /// Its `credentials.type` in the configuration file.
    pub type_name: &'static str,
    /// The fields that give it: any of them names this kind in an admin API body, and the
    /// first is reported missing when a configuration file's table of this type has none.
    pub fields: &'static [Name],
    /// What the first field's problem says when it is missing.
    pub required: &'static str,
    /// Reads the kind's fields (recording their problems).
    pub read: &'f dyn Fn(&mut Draft<'_>) -> Option<T>,
}

/// Reads one storage object.
pub struct Draft<'a> {
    pub style: Style,
    obj: &'a Map<String, Value>,
    /// The credentials: the config file's `credentials` table; the API's `credentials`
    /// object, or the body itself (Ango shapes).
    creds: Option<&'a Map<String, Value>>,
    fields: Fields,
    /// Keys read, so that the config file's unknown keys can be refused.
    seen: BTreeSet<&'static str>,
    seen_creds: BTreeSet<&'static str>,
}

impl<'a> Draft<'a> {
    /// A draft of `value`; a value that is no object is the only problem reported.
    pub fn new(value: &'a Value, style: Style) -> Result<Draft<'a>, Fields> {
        let Some(obj) = value.as_object() else {
            return Err(Fields::from([("body".into(), "must be a JSON object".into())]));
        };
        let mut draft = Draft {
            style,
            obj,
            creds: None,
            fields: Fields::new(),
            seen: BTreeSet::new(),
            seen_creds: BTreeSet::new(),
        };
        draft.seen.insert("credentials");
        draft.creds = match (style, obj.get("credentials")) {
            (_, Some(Value::Object(c))) => Some(c),
            (Style::Api, None | Some(Value::Null)) => Some(obj),
            (_, None) => None,
            (_, Some(_)) => {
                draft.fail_at("credentials", "must be a table of the credentials' type and keys");
                None
            }
        };
        Ok(draft)
    }

    /// The spelling of a field for error messages.
    pub fn name(&self, name: Name) -> String {
        match self.style {
            Style::Config => name.config.to_string(),
            Style::Api => name
                .api
                .iter()
                .find(|n| self.obj.contains_key(**n))
                .unwrap_or(&name.api[0])
                .to_string(),
        }
    }

    /// The spelling of a credentials field for error messages.
    pub fn cred_name(&self, name: Name) -> String {
        match self.style {
            Style::Config => format!("credentials.{}", name.config),
            Style::Api => {
                let creds = self.creds;
                name.api
                    .iter()
                    .find(|n| creds.is_some_and(|c| c.contains_key(**n)))
                    .unwrap_or(&name.api[0])
                    .to_string()
            }
        }
    }

    /// Records a problem with `field` (the first problem of a field is kept).
    pub fn fail_at(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.fields.entry(field.into()).or_insert_with(|| message.into());
    }

    /// Records a problem with `name`.
    pub fn fail(&mut self, name: Name, message: impl Into<String>) {
        let field = self.name(name);
        self.fail_at(field, message);
    }

    /// Records a problem with credentials field `name`.
    pub fn fail_cred(&mut self, name: Name, message: impl Into<String>) {
        let field = self.cred_name(name);
        self.fail_at(field, message);
    }

    fn lookup(&mut self, name: Name) -> Option<&'a Value> {
        self.seen.insert(name.config);
        match self.style {
            Style::Config => self.obj.get(name.config),
            Style::Api => name.api.iter().find_map(|n| self.obj.get(*n)),
        }
    }

    fn lookup_cred(&mut self, name: Name) -> Option<&'a Value> {
        self.seen_creds.insert(name.config);
        let creds = self.creds?;
        match self.style {
            Style::Config => creds.get(name.config),
            Style::Api => name.api.iter().find_map(|n| creds.get(*n)),
        }
    }

    /// Whether the writer gave `name` at all (null counts as given: it clears).
    pub fn has(&self, name: Name) -> bool {
        match self.style {
            Style::Config => self.obj.contains_key(name.config),
            Style::Api => name.api.iter().any(|n| self.obj.contains_key(*n)),
        }
    }

    /// Whether the writer gave credentials field `name`.
    pub fn has_cred(&self, name: Name) -> bool {
        let Some(creds) = self.creds else { return false };
        match self.style {
            Style::Config => creds.contains_key(name.config),
            Style::Api => name.api.iter().any(|n| creds.contains_key(*n)),
        }
    }

    /// A non-empty string (trimmed); `None` when absent or null.
    pub fn text(&mut self, name: Name) -> Option<String> {
        match self.lookup(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(_) => {
                self.fail(name, "must be a non-empty string");
                None
            }
        }
    }

    /// A non-empty credentials string; `None` when absent. Not trimmed in the config file,
    /// where a secret is whatever the operator wrote.
    pub fn cred_text(&mut self, name: Name) -> Option<String> {
        let style = self.style;
        match self.lookup_cred(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(match style {
                Style::Api => s.trim().to_string(),
                Style::Config => s.clone(),
            }),
            Some(_) => {
                self.fail_cred(name, "must be a non-empty string");
                None
            }
        }
    }

    /// A non-empty string that keeps `rule`, else `None` with the rule's message recorded.
    pub fn checked(&mut self, name: Name, rule: fn(&str) -> Result<(), String>) -> Option<String> {
        let value = self.text(name)?;
        match rule(&value) {
            Ok(()) => Some(value),
            Err(m) => {
                self.fail(name, m);
                None
            }
        }
    }

    /// A non-empty credentials string that keeps `rule`, else `None` with the rule's
    /// message recorded.
    pub fn cred_checked(&mut self, name: Name, rule: fn(&str) -> Result<(), String>) -> Option<String> {
        let value = self.cred_text(name)?;
        match rule(&value) {
            Ok(()) => Some(value),
            Err(m) => {
                self.fail_cred(name, m);
                None
            }
        }
    }

    /// A credentials value of any shape (a key file as an object or as its JSON text).
    pub fn cred_value(&mut self, name: Name) -> Option<&'a Value> {
        self.lookup_cred(name).filter(|v| !v.is_null())
    }

    /// `true` or `false`.
    pub fn flag(&mut self, name: Name) -> Option<bool> {
        match self.lookup(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(name, "must be true or false");
                None
            }
        }
    }

    /// The endpoint: `Some(None)` to clear it (null or ""), `Some(Some(_))` parsed exactly as
    /// given (never trimmed: what is checked must be what is used), with the path it carries
    /// (a storage that allows one says so), or `None` when absent or wrong.
    pub fn endpoint(&mut self, name: Name) -> Option<Option<(Endpoint, String)>> {
        match self.lookup(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.is_empty() => Some(None),
            Some(Value::String(s)) => match Endpoint::parse_with_path(s) {
                Ok(parsed) => Some(Some(parsed)),
                Err(m) => {
                    self.fail(name, m);
                    None
                }
            },
            Some(_) => {
                self.fail(name, "must be a URL string like https://minio.example.com:9000");
                None
            }
        }
    }

    /// A list of names (`buckets`), or one (`bucket`, the Ango shape), each checked by `rule`.
    pub fn names(&mut self, list: Name, one: Name, rule: fn(&str) -> Result<(), String>) -> Option<Vec<String>> {
        let names: Vec<String> = match (self.lookup(list), self.lookup(one)) {
            (Some(Value::Array(items)), _) => {
                let strings: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_string)).collect();
                match strings {
                    Some(names) => names,
                    None => {
                        self.fail(list, "must be a list of names");
                        return None;
                    }
                }
            }
            (Some(Value::Null) | None, Some(Value::String(b))) => vec![b.clone()],
            (Some(Value::Null) | None, None | Some(Value::Null)) => return None,
            (Some(Value::Null) | None, Some(_)) => {
                self.fail(one, "must be a name");
                return None;
            }
            (Some(_), _) => {
                self.fail(list, "must be a list of names");
                return None;
            }
        };
        if names.is_empty() {
            self.fail(list, "at least one is required");
            return None;
        }
        let field = self.name(list);
        let mut ok = true;
        for (i, n) in names.iter().enumerate() {
            if let Err(m) = rule(n) {
                ok = false;
                let at = match self.style {
                    Style::Config => format!("{field}[{i}]"),
                    Style::Api => field.clone(),
                };
                self.fail_at(at, format!("{field}[{i}] {m}"));
            }
        }
        ok.then_some(names)
    }

    /// The one kind of credentials the draft gives, read by that kind's reader: named by
    /// `credentials.type` in the configuration file, found by its fields in an admin API
    /// body. `None` with a problem recorded when the draft gives none, several, or a bad one;
    /// `None` without a problem when an admin API change leaves them as they are (`keep`).
    /// `hint` says what an API body may give.
    pub fn pick_credentials<T>(&mut self, kinds: &[CredentialKind<'_, T>], keep: bool, hint: &str) -> Option<T> {
        if self.style == Style::Config {
            return self.credentials_by_type(kinds);
        }
        let given: Vec<&CredentialKind<'_, T>> = kinds
            .iter()
            .filter(|k| k.fields.iter().any(|f| self.has_cred(*f)))
            .collect();
        match given.as_slice() {
            [kind] => (kind.read)(self),
            [] => {
                if !keep {
                    self.fail_at("credentials", hint);
                }
                None
            }
            _ => {
                self.fail_at("credentials", "give one kind of credentials, not several");
                None
            }
        }
    }

    fn credentials_by_type<T>(&mut self, kinds: &[CredentialKind<'_, T>]) -> Option<T> {
        let types = || kinds.iter().map(|k| k.type_name).collect::<Vec<_>>().join(", ");
        if self.creds.is_none() {
            self.fail_at("credentials", "is required");
            return None;
        }
        let Some(type_name) = self.cred_text(TYPE) else {
            self.fail_at("credentials.type", format!("is required: one of {}", types()));
            return None;
        };
        let Some(kind) = kinds.iter().find(|k| k.type_name == type_name) else {
            self.fail_at("credentials.type", format!("is not one of {}", types()));
            return None;
        };
        let read = (kind.read)(self);
        if read.is_none() && !kind.fields.iter().any(|f| self.has_cred(*f)) {
            self.fail_cred(kind.fields[0], kind.required);
        }
        read
    }

    /// The problems found, refusing the config file's unknown keys too.
    pub fn finish(mut self) -> Result<(), Fields> {
        // Which keys a storage has depends on its provider: unknown ones are only told once
        // the provider is right.
        if self.style == Style::Config && !self.fields.contains_key("provider") {
            for key in self.obj.keys() {
                if !self.seen.contains(key.as_str()) {
                    self.fields.insert(key.clone(), "is not a key of storages".into());
                }
            }
            // Which keys credentials have depends on their type: unknown ones are only
            // told once the type is right.
            let typed = !self.fields.contains_key("credentials.type");
            if let Some(creds) = self.creds.filter(|_| typed) {
                for key in creds.keys() {
                    if key != "type" && !self.seen_creds.contains(key.as_str()) {
                        self.fields
                            .insert(format!("credentials.{key}"), "is not a key of these credentials".into());
                    }
                }
            }
        }
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(self.fields)
        }
    }

    /// Whether problems were found so far.
    pub fn failed(&self) -> bool {
        !self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REGION: Name = Name {
        config: "region",
        api: &["region"],
    };
    const SECRET: Name = Name {
        config: "secret_access_key",
        api: &["secretAccessKey", "secret_access_key", "privateKey"],
    };

    #[test]
    fn api_names_follow_the_writer_and_credentials_may_sit_at_the_top() {
        let body = json!({"region": 5, "privateKey": ""});
        let mut d = Draft::new(&body, Style::Api).unwrap();
        assert_eq!(d.text(REGION), None);
        assert_eq!(d.cred_text(SECRET), None);
        let fields = d.finish().unwrap_err();
        assert!(
            fields.contains_key("region") && fields.contains_key("privateKey"),
            "{fields:?}"
        );
    }

    #[test]
    fn config_names_nest_credentials_and_unknown_keys_are_refused() {
        let table = json!({"region": "eu-west-1", "regoin": "x", "credentials": {"type": "access_key", "secret_access_key": " s ", "extra": 1}});
        let mut d = Draft::new(&table, Style::Config).unwrap();
        assert_eq!(d.text(REGION).as_deref(), Some("eu-west-1"));
        assert_eq!(
            d.cred_text(SECRET).as_deref(),
            Some(" s "),
            "config secrets are taken as written"
        );
        let fields = d.finish().unwrap_err();
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["credentials.extra", "regoin"]);
    }

    #[test]
    fn names_are_checked_one_by_one() {
        let list = Name {
            config: "buckets",
            api: &["buckets"],
        };
        let one = Name {
            config: "bucket",
            api: &["bucket"],
        };
        let body = json!({"buckets": ["good-one", "Bad/One"]});
        let mut d = Draft::new(&body, Style::Config).unwrap();
        assert_eq!(d.names(list, one, crate::storage::rules::check_bucket), None);
        assert!(d.finish().unwrap_err().contains_key("buckets[1]"));
        let body = json!({"bucket": "only-one"});
        let mut d = Draft::new(&body, Style::Api).unwrap();
        assert_eq!(
            d.names(list, one, crate::storage::rules::check_bucket),
            Some(vec!["only-one".to_string()])
        );
    }
}
