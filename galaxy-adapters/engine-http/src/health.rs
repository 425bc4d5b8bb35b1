//! What `GET /healthz` says: the version of the engine contract the engine implements.

/// The version of the engine contract this client speaks (docs/engine-contract.md,
/// "Versions"). Version 1 was the contract before the credential; version 2 adds
/// `GALAXY_ENGINE_TOKEN` and the 401 it requires, which an engine of version 1 does not
/// give (the platform's start job refuses such an engine unless the operator lists it).
pub const CONTRACT_VERSION: &str = "2";

/// An engine's answer to `GET /healthz`, as far as the contract gives it meaning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Health {
    /// The contract version the engine says it implements (`{"contract": "2"}`); `None`
    /// when its body does not say (any body is healthy: engines of contract 1 answer
    /// anything), which the contract reads as version 1.
    pub contract: Option<String>,
}

impl Health {
    /// Reads a `/healthz` body: the `contract` string of a JSON object, if there is one.
    pub fn from_body(body: &[u8]) -> Self {
        let contract = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("contract")?.as_str().map(str::to_owned));
        Self { contract }
    }

    /// The version the contract takes the engine for: what it says, else `"1"`.
    pub fn contract_or_v1(&self) -> &str {
        self.contract.as_deref().unwrap_or("1")
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn the_version_is_read_when_said_and_one_otherwise() {
        let said = Health::from_body(br#"{"status": "ok", "contract": "2"}"#);
        assert_eq!(said.contract.as_deref(), Some("2"));
        assert_eq!(said.contract_or_v1(), "2");
        for silent in [&b""[..], b"ok", b"{}", br#"{"contract": 2}"#, b"[1]"] {
            let health = Health::from_body(silent);
            assert_eq!(health.contract, None, "{silent:?}");
            assert_eq!(health.contract_or_v1(), "1");
        }
    }
}
