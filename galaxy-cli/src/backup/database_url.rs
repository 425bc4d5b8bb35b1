//! The database URL as the Postgres clients (`pg_dump`, `pg_restore`) get it: the
//! password taken out for their environment.

use anyhow::Context as _;

/// The database URL without its password, and the password (decoded), for a Postgres
/// client: the URL goes on its command line, the password into its environment
/// (`PGPASSWORD`), where other local users cannot read it.
pub(super) fn without_password(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut parsed = url::Url::parse(url).context("GALAXY_DATABASE_URL is not a URL")?;
    // The password may also come as a parameter (`?password=`), which the server's
    // driver reads too.
    let in_query = parsed
        .query_pairs()
        .find(|(key, _)| key == "password")
        .map(|(_, value)| value.into_owned());
    if let Some(password) = in_query {
        // The other parameters stay exactly as written (re-encoding them as a form would
        // turn `%20` into `+`, which libpq does not read as a space).
        let rest: Vec<String> = parsed
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                percent_encoding::percent_decode_str(key).decode_utf8_lossy() != "password"
            })
            .map(str::to_owned)
            .collect();
        let rest = rest.join("&");
        parsed.set_query(Some(rest.as_str()).filter(|r| !r.is_empty()));
        let _ = parsed.set_password(None);
        return Ok((parsed.into(), Some(password)));
    }
    let Some(encoded) = parsed.password().map(str::to_owned) else {
        return Ok((url.to_owned(), None));
    };
    let password = percent_encoding::percent_decode_str(&encoded)
        .decode_utf8()
        .context("the password in GALAXY_DATABASE_URL is not UTF-8")?
        .into_owned();
    parsed
        .set_password(None)
        .map_err(|()| anyhow::anyhow!("GALAXY_DATABASE_URL cannot lose its password"))?;
    Ok((parsed.into(), Some(password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_parameter_leaves_the_url_too() {
        let Ok((url, password)) = without_password(
            "postgres://galaxy@db.example/galaxy?password=s%40cr%2Ft&sslmode=require",
        ) else {
            panic!("a valid URL was refused");
        };
        assert_eq!(url, "postgres://galaxy@db.example/galaxy?sslmode=require");
        assert_eq!(password.as_deref(), Some("s@cr/t"));
        let Ok((url, _)) = without_password(
            "postgres://galaxy@db.example/galaxy?options=-c%20search_path%3Dg&password=x",
        ) else {
            panic!("a valid URL was refused");
        };
        assert_eq!(
            url, "postgres://galaxy@db.example/galaxy?options=-c%20search_path%3Dg",
            "the other parameters as written"
        );
        let Ok((url, _)) = without_password("postgres://galaxy@db.example/galaxy?password=x")
        else {
            panic!("a valid URL was refused");
        };
        assert_eq!(url, "postgres://galaxy@db.example/galaxy");
    }

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let Ok((url, password)) =
            without_password("postgres://galaxy:s%40cr%2Ft@db.example:5432/galaxy?sslmode=require")
        else {
            panic!("a valid URL was refused");
        };
        assert_eq!(
            url,
            "postgres://galaxy@db.example:5432/galaxy?sslmode=require"
        );
        assert_eq!(password.as_deref(), Some("s@cr/t"));
        let Ok((url, password)) = without_password("postgres://galaxy@127.0.0.1/galaxy") else {
            panic!("a valid URL was refused");
        };
        assert_eq!(
            (url.as_str(), password),
            ("postgres://galaxy@127.0.0.1/galaxy", None)
        );
        assert!(without_password("not a url").is_err());
    }
}
