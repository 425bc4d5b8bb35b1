//! Who is calling a service.

use crate::domain::UserId;
use crate::domain::user::{Role, User};

/// The authenticated caller of a service method, as the API layer resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The caller.
    pub user_id: UserId,
    /// Whether the caller holds the admin role.
    pub is_admin: bool,
}

impl Actor {
    /// The actor for a user.
    pub fn of(user: &User) -> Self {
        Self {
            user_id: user.id,
            is_admin: user.has_role(Role::Admin),
        }
    }
}
