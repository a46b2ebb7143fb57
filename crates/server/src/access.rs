//! Who may call the HTTP API: API keys with a role and an account scope.
//!
//! | role | may use |
//! |---|---|
//! | `operator` | connectors, their versions and outbound audit, the admin audit of every account |
//! | `account-admin` | the managed credentials and admin audit of the accounts it is scoped to |
//! | `service` | the connection flows of the users of the accounts it is scoped to |
//!
//! Every role may read the connector list, a connector's description and its
//! login page (nothing secret, nothing per account). Keys are stored hashed
//! ([`crate::store::ApiKeyStore`]); the API checks a key on every request, so a
//! revoked key stops working at once.

use serde::{Deserialize, Serialize};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the host: plugins, configuration, audit.
    Operator,
    /// Administers the managed credentials of its accounts.
    AccountAdmin,
    /// A platform backend running the flows for the users of its accounts.
    Service,
}

impl Role {
    /// The stored and displayed name (`operator`, `account-admin`, `service`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::AccountAdmin => "account-admin",
            Role::Service => "service",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "operator" => Some(Role::Operator),
            "account-admin" => Some(Role::AccountAdmin),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The accounts a key may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountScope {
    /// None (operators).
    None,
    /// Every account (`*`): a platform backend serving all tenants.
    All,
    /// These accounts only.
    Only(Vec<String>),
}

/// The account id that stands for "every account" in a key's scope.
pub const ALL_ACCOUNTS: &str = "*";

impl AccountScope {
    /// Builds a scope from the stored list (`["*"]` is every account).
    pub fn from_list(accounts: Vec<String>) -> Self {
        if accounts.iter().any(|a| a == ALL_ACCOUNTS) {
            AccountScope::All
        } else if accounts.is_empty() {
            AccountScope::None
        } else {
            AccountScope::Only(accounts)
        }
    }

    /// The stored list.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            AccountScope::None => Vec::new(),
            AccountScope::All => vec![ALL_ACCOUNTS.to_string()],
            AccountScope::Only(accounts) => accounts.clone(),
        }
    }

    /// True when `account` is in scope.
    pub fn contains(&self, account: &str) -> bool {
        match self {
            AccountScope::None => false,
            AccountScope::All => true,
            AccountScope::Only(accounts) => accounts.iter().any(|a| a == account),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id (`key_…`).
    pub key_id: String,
    /// The key's name, for audit.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The accounts it may act on.
    pub accounts: AccountScope,
    /// A service key trusted with raw access tokens.
    pub raw_tokens: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The key's role does not allow the route.
    #[error("a `{role}` key cannot {action}")]
    Role {
        /// The caller's role.
        role: Role,
        /// What it tried.
        action: &'static str,
    },
    /// The account is not in the key's scope.
    #[error("this key is not scoped to account `{0}`")]
    Account(String),
    /// The route hands out raw tokens and the key is not trusted with them.
    #[error("this key is not trusted with raw access tokens (create it with `--raw-tokens`)")]
    RawTokens,
    /// The OAuth state belongs to an account outside the key's scope (which
    /// is not named).
    #[error("this key is not scoped to the account this login belongs to")]
    ForeignLogin,
}

impl Principal {
    /// Requires one of `roles`; `action` names the route for the error.
    pub fn require_role(&self, roles: &[Role], action: &'static str) -> Result<(), Denied> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Denied::Role {
                role: self.role,
                action,
            })
        }
    }

    /// Requires `role` and `account` in scope.
    pub fn require_account(
        &self,
        role: Role,
        account: &str,
        action: &'static str,
    ) -> Result<(), Denied> {
        self.require_role(&[role], action)?;
        if self.accounts.contains(account) {
            Ok(())
        } else {
            Err(Denied::Account(account.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, accounts: &[&str]) -> Principal {
        Principal {
            key_id: "key_1".into(),
            name: "test".into(),
            role,
            accounts: AccountScope::from_list(accounts.iter().map(|a| a.to_string()).collect()),
            raw_tokens: false,
        }
    }

    #[test]
    fn scope_and_role_are_both_required() {
        let service = principal(Role::Service, &["acct-1"]);
        assert!(
            service
                .require_account(Role::Service, "acct-1", "x")
                .is_ok()
        );
        assert_eq!(
            service.require_account(Role::Service, "acct-2", "x"),
            Err(Denied::Account("acct-2".into()))
        );
        assert!(matches!(
            service.require_account(Role::AccountAdmin, "acct-1", "x"),
            Err(Denied::Role { .. })
        ));
        let everywhere = principal(Role::Service, &["*"]);
        assert!(
            everywhere
                .require_account(Role::Service, "any", "x")
                .is_ok()
        );
        let operator = principal(Role::Operator, &[]);
        assert!(
            operator
                .require_account(Role::Operator, "acct-1", "x")
                .is_err()
        );
    }

    #[test]
    fn role_names_round_trip() {
        for role in [Role::Operator, Role::AccountAdmin, Role::Service] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
