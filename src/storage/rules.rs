//! The rules every storage field must keep, wherever the storage comes from (the
//! configuration file or the admin API). Messages say what is expected, never repeat the
//! value (it may be a secret typed into the wrong field).

/// Org and storage ids appear in URL paths: URL-safe characters only.
pub fn check_id(id: &str) -> Result<(), String> {
    // At least one letter or digit: `.` and `..` are dot segments of the URL an id sits in,
    // which a proxy on the way could resolve.
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id.bytes().any(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 128 characters of letters, digits, `-`, `_` or `.`, with a letter or digit".into())
    }
}

/// Bucket names of S3 (and the wider ones of GCS and legacy S3): 3..=222 letters, digits,
/// `.`, `-`, `_`, starting and ending with a letter or digit. Anything else could change the
/// meaning of an upstream URL.
pub fn check_bucket(name: &str) -> Result<(), String> {
    let ok = (3..=222).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("is not a valid bucket name (3 to 222 letters, digits, `.`, `-`, `_`, starting and ending with a letter or digit)".into())
    }
}

/// Azure container names: 3..=63 lowercase letters, digits and single `-`, starting and
/// ending with a letter or digit
/// (<https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata>).
pub fn check_container(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err("is not a valid container name (3 to 63 lowercase letters, digits and single `-`)".into())
    }
}

/// Azure storage account names: 3..=24 lowercase letters and digits.
pub fn check_account(name: &str) -> Result<(), String> {
    let ok = (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err("must be a storage account name of 3 to 24 lowercase letters and digits".into())
    }
}

/// A region name: lowercase letters, digits and `-` (`eu-central-1`, `auto`). The region
/// goes into the signing scope and, for `aws`, into the endpoint's host name: anything else
/// could change where a request goes or break its signature.
pub fn check_region(region: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("must be a region name of lowercase letters, digits and `-`, like eu-central-1".into())
    }
}

/// An IAM role ARN: `arn:{partition}:iam::{12-digit account}:role/{path/}{name}`.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let bad = || "is not a role ARN like arn:aws:iam::111122223333:role/labeling-read".to_string();
    let rest = arn.strip_prefix("arn:").ok_or_else(bad)?;
    let (partition, rest) = rest.split_once(':').ok_or_else(bad)?;
    let rest = rest.strip_prefix("iam::").ok_or_else(bad)?;
    let (account, role) = rest.split_once(':').ok_or_else(bad)?;
    let name = role.strip_prefix("role/").ok_or_else(bad)?;
    let ok = partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (1..=512).contains(&name.len())
        && !name.ends_with('/')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// AWS's rules for `ExternalId`: 2 to 1224 characters of `[\w+=,.@:/-]`.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("must be 2 to 1224 characters of letters, digits and +=,.@:/_-".into())
    }
}

/// An Entra (Azure AD) tenant: its GUID or a domain like `contoso.onmicrosoft.com`. It goes
/// into the token endpoint's path.
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    let ok = (3..=253).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !tenant.starts_with(['-', '.'])
        && !tenant.contains("..");
    if ok {
        Ok(())
    } else {
        Err("must be a tenant ID (a GUID) or a tenant domain".into())
    }
}

/// A Google service account's email: `name@project.iam.gserviceaccount.com` (or another
/// `@…gserviceaccount.com` domain). It goes into the IAM Credentials API's path.
pub fn check_service_account(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(name, domain)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && domain.ends_with("gserviceaccount.com")
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        });
    if ok {
        Ok(())
    } else {
        Err("must be a service account email like reader@project.iam.gserviceaccount.com".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_names_and_never_dot_segments() {
        for ok in ["acme", "main", "a.b", "x_1-2", ".hidden", &"a".repeat(128)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "...",
            "-",
            "a b",
            "a/b",
            "a\nb",
            "a%2e",
            "ä",
            &"a".repeat(129),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn regions_are_names_and_nothing_else() {
        for ok in ["us-east-1", "eu-central-1", "auto", "cn-north-1", "nyc3"] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "x@169.254.169.254",
            "us-east-1\r\nX-Evil: 1",
            "EU",
            "a.b",
            "-a",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(check_region(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn role_arns() {
        for ok in [
            "arn:aws:iam::111122223333:role/r",
            "arn:aws-cn:iam::111122223333:role/path/to/Role_1+=,.@-",
        ] {
            assert!(check_role_arn(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "arn:aws:iam::111122223333:user/u",
            "arn:aws:iam::11112222333:role/r",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/a b",
        ] {
            assert!(check_role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn azure_names() {
        assert!(check_account("acmeassets").is_ok());
        for bad in ["Acme", "ac", "a-b-c", &"a".repeat(25)] {
            assert!(check_account(bad).is_err(), "{bad}");
        }
        assert!(check_container("labeling-images").is_ok());
        for bad in ["Images", "a--b", "-ab", "ab", "a_b"] {
            assert!(check_container(bad).is_err(), "{bad}");
        }
        assert!(check_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47").is_ok());
        assert!(check_tenant("contoso.onmicrosoft.com").is_ok());
        for bad in ["../x", "a/b", "a b", "x"] {
            assert!(check_tenant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_accounts() {
        assert!(check_service_account("reader@acme-proj.iam.gserviceaccount.com").is_ok());
        for bad in [
            "reader",
            "reader@example.com",
            "a/b@x.iam.gserviceaccount.com",
            "@x.gserviceaccount.com",
        ] {
            assert!(check_service_account(bad).is_err(), "{bad}");
        }
    }
}
