//! Conformance suite for [`UserStore`], [`ChallengeStore`] and [`SessionStore`].
//!
//! Run it against a store that implements all three (they share the users table):
//! `galaxy_ports::conformance::users::run_all(|| async { MyStore::new().await }).await`.
//! The login-limit cases spawn tokio tasks, so call it from a multi-thread runtime to
//! exercise real parallelism.

// Shared with the lobby and race-name suites; declared here because the conformance
// `mod.rs` lists only the public suites.
#[path = "fixtures.rs"]
pub(super) mod fixtures;

mod challenge_limits;
mod challenges;
mod sessions;

use std::future::Future;

use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::user::{DisplayName, Email, Entitlements, Locale, Role, User, UserStatus};
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{ChallengeStore, ProfileChange, SessionStore, StoreError, UserStore};

use self::fixtures::{Must, assert_err, at, new_uuid, tag};
use super::run_case;

const SUITE: &str = "users";

/// Runs every user, login-challenge and session case, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: UserStore + ChallengeStore + SessionStore + 'static,
{
    run_case(
        SUITE,
        "insert, get, find by e-mail, not found",
        &make,
        |s| async move {
            insert_get_find(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "e-mail is unique after normalisation",
        &make,
        |s| async move {
            duplicate_email(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "a new account's name never looks like another user's",
        &make,
        |s| async move {
            default_names_stay_apart(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "list pages in creation order",
        &make,
        |s| async move {
            list_pages(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "search by e-mail or display name",
        &make,
        |s| async move {
            search(&s).await;
        },
    )
    .await;
    run_case(SUITE, "profile update", &make, |s| async move {
        profile_update(&s).await;
    })
    .await;
    run_case(
        SUITE,
        "display names that look alike",
        &make,
        |s| async move {
            look_alike_names(std::sync::Arc::new(s)).await;
        },
    )
    .await;
    run_case(SUITE, "status compare-and-set", &make, |s| async move {
        status_cas(&s).await;
    })
    .await;
    run_case(SUITE, "roles, entitlements, touch", &make, |s| async move {
        roles_entitlements_touch(&s).await;
    })
    .await;
    run_case(SUITE, "list admins", &make, |s| async move {
        list_admins(&s).await;
    })
    .await;
    challenges::run(SUITE, &make).await;
    challenge_limits::run(SUITE, &make).await;
    sessions::run(SUITE, &make).await;
}

/// A fresh user with a unique address `{local}-{tag}@example.org`, created at `created`.
fn user(local: &str, created: Timestamp) -> User {
    let email = Email::parse(&format!("{local}-{}@example.org", tag())).must("email");
    User::new(UserId::from_uuid(new_uuid()), email, created)
}

async fn insert_get_find<S: UserStore>(store: &S) {
    let alice = user("alice", at(0));
    store.insert_user(&alice).await.must("insert_user");
    assert_eq!(store.get_user(alice.id).await.must("get_user"), alice);

    let shouted = Email::parse(&alice.email.as_str().to_uppercase()).must("email");
    let found = store.find_user_by_email(&shouted).await.must("find");
    assert_eq!(found, Some(alice.clone()), "find by a case variant");

    let nobody = Email::parse(&format!("nobody-{}@example.org", tag())).must("email");
    assert_eq!(store.find_user_by_email(&nobody).await.must("find"), None);
    let unknown = UserId::from_uuid(new_uuid());
    assert_err!(
        store.get_user(unknown).await,
        StoreError::NotFound { .. },
        "get_user of an unknown id"
    );
}

async fn duplicate_email<S: UserStore>(store: &S) {
    let local = format!("Alice.Dup-{}", tag());
    let first = Email::parse(&format!("{local}@Example.ORG")).must("email");
    let second = Email::parse(&format!("  {}@example.org ", local.to_uppercase())).must("email");
    let alice = User::new(UserId::from_uuid(new_uuid()), first, at(0));
    let twin = User::new(UserId::from_uuid(new_uuid()), second, at(1));
    store.insert_user(&alice).await.must("insert first");
    assert_err!(
        store.insert_user(&twin).await,
        StoreError::Duplicate { .. },
        "insert of the same address in other case"
    );
    assert_err!(
        store.get_user(twin.id).await,
        StoreError::NotFound { .. },
        "the refused user was not stored"
    );
    assert_eq!(store.get_user(alice.id).await.must("get"), alice);
}

async fn default_names_stay_apart<S: UserStore>(store: &S) {
    // "Bob" exists; first logins as bob@ of other domains, at once, each get a name of
    // their own (the default would have been "bob", the very look of Bob's).
    let name = format!("bob{}", tag());
    let first = Email::parse(&format!("{name}@example.org")).must("email");
    let mut bob = User::new(UserId::from_uuid(new_uuid()), first, at(0));
    let shown = DisplayName::parse(&name.to_uppercase()).must("name");
    bob.display_name = shown.clone();
    assert_eq!(store.insert_user(&bob).await.must("insert Bob"), bob);
    let others: Vec<User> = (0..6)
        .map(|i| {
            let email = Email::parse(&format!("{name}@other{i}.example")).must("email");
            User::new(UserId::from_uuid(new_uuid()), email, at(1))
        })
        .collect();
    let stored = futures::future::join_all(others.iter().map(|u| store.insert_user(u))).await;
    let mut keys = vec![shown.key()];
    for (user, stored) in others.iter().zip(stored) {
        let stored = stored.must("insert a namesake");
        assert_ne!(stored.display_name, user.display_name, "{stored:?}");
        assert!(
            stored.display_name.as_str().starts_with(&name),
            "{stored:?}"
        );
        assert_eq!(store.get_user(user.id).await.must("get"), stored);
        keys.push(stored.display_name.key());
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 7, "every name looks different: {keys:?}");
    // Keeping one's own name (a language change on the profile form sends it too) is
    // never "taken", nor is writing it in another case.
    let change = ProfileChange {
        display_name: Some(DisplayName::parse(&name).must("name")),
        ..ProfileChange::default()
    };
    let kept = store.update_profile(bob.id, &change).await.must("re-case");
    assert_eq!(kept.display_name.as_str(), name);
}

async fn list_pages<S: UserStore>(store: &S) {
    // Two users share a creation instant, so the id decides between them.
    let mut users: Vec<User> = [5, 1, 3, 3, 0, 4]
        .into_iter()
        .enumerate()
        .map(|(i, secs)| user(&format!("u{i}"), at(secs)))
        .collect();
    for u in &users {
        store.insert_user(u).await.must("insert_user");
    }
    users.sort_by_key(|u| (u.created_at, u.id));

    let mut seen = Vec::new();
    let mut request = PageRequest::first(3).must("page");
    let mut pages = 0;
    loop {
        let page = store.list_users(&request).await.must("list_users");
        pages += 1;
        assert!(page.items.len() <= 3, "page {pages} longer than the limit");
        seen.extend(page.items);
        match page.next_after {
            Some(after) => request = PageRequest::after(3, after).must("page"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(
        pages, 2,
        "6 users in pages of 3: the second page is the last"
    );
    assert_eq!(seen, users, "every user once, by creation time then id");

    let all = store
        .list_users(&PageRequest::first(50).must("page"))
        .await
        .must("list_users");
    assert_eq!((all.items, all.next_after), (users, None));
}

async fn search<S: UserStore>(store: &S) {
    let mut users = Vec::new();
    for (i, local) in ["vega", "Vegan", "altair", "de_neb", "de%neb", "plain"]
        .into_iter()
        .enumerate()
    {
        let u = user(local, at(i64::try_from(i).must("i")));
        store.insert_user(&u).await.must("insert_user");
        users.push(u);
    }
    let found = |page: Page<User>| -> Vec<String> {
        page.items
            .into_iter()
            .map(|u| u.email.as_str().split('-').next().unwrap_or("").to_owned())
            .collect()
    };
    let first = |limit| PageRequest::first(limit).must("page");
    let got = store.search_users("VEGA", &first(50)).await.must("search");
    assert_eq!(
        found(got),
        ["vega", "vegan"],
        "case ignored, creation order"
    );
    // A display name counts too.
    let renamed = store
        .update_profile(users[2].id, &rename("Captain Vegastar"))
        .await
        .must("rename");
    assert_eq!(renamed.display_name.as_str(), "Captain Vegastar");
    let got = store.search_users("vega", &first(50)).await.must("search");
    assert_eq!(found(got), ["vega", "vegan", "altair"]);
    // Pattern characters are literal.
    let got = store.search_users("_", &first(50)).await.must("search");
    assert_eq!(found(got), ["de_neb"]);
    let got = store.search_users("%", &first(50)).await.must("search");
    assert_eq!(found(got), ["de%neb"]);
    let got = store
        .search_users("nobody-here", &first(50))
        .await
        .must("search");
    assert_eq!((got.items.len(), got.next_after), (0, None));
    // Paged like the listing.
    let one = store.search_users("vega", &first(2)).await.must("search");
    let after = one
        .next_after
        .clone()
        .ok_or("no second page")
        .must("a second page");
    assert_eq!(found(one), ["vega", "vegan"]);
    let two = store
        .search_users("vega", &PageRequest::after(2, after).must("page"))
        .await
        .must("search");
    assert_eq!(two.next_after, None);
    assert_eq!(found(two), ["altair"]);
}

fn rename(name: &str) -> ProfileChange {
    ProfileChange {
        display_name: Some(DisplayName::parse(name).must("name")),
        locale: None,
        email_notifications: None,
    }
}

async fn look_alike_names<S: UserStore + 'static>(store: std::sync::Arc<S>) {
    let users: Vec<User> = (0..12).map(|i| user(&format!("u{i}"), at(i))).collect();
    for u in &users {
        store.insert_user(u).await.must("insert_user");
    }
    let word = format!("Nova {}", tag());
    store
        .update_profile(users[0].id, &rename(&word))
        .await
        .must("the first takes it");
    for look_alike in [
        word.to_uppercase(),
        word.replace(' ', "-"),
        word.replace('o', "о"),
    ] {
        assert_err!(
            store
                .update_profile(users[1].id, &rename(&look_alike))
                .await,
            StoreError::Duplicate { .. },
            "{look_alike} looks like {word}"
        );
    }
    // Its owner may write it another way.
    store
        .update_profile(users[0].id, &rename(&word.to_uppercase()))
        .await
        .must("the owner's own name");
    // Ten users race for look-alikes of a fresh name: exactly one wins.
    let fresh = format!("Vega {}", tag());
    let mut tasks = Vec::new();
    for (i, u) in users[2..].iter().enumerate() {
        let store = store.clone();
        let id = u.id;
        let name = if i % 2 == 0 {
            fresh.clone()
        } else {
            fresh.to_lowercase()
        };
        tasks.push(tokio::spawn(async move {
            store.update_profile(id, &rename(&name)).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.must("join") {
            Ok(_) => won += 1,
            Err(StoreError::Duplicate { .. }) => {}
            Err(other) => panic!("a racing rename failed: {other}"),
        }
    }
    assert_eq!(won, 1, "one of ten concurrent look-alike renames");
}

async fn profile_update<S: UserStore>(store: &S) {
    let alice = user("alice", at(0));
    store.insert_user(&alice).await.must("insert_user");
    let change = ProfileChange {
        display_name: Some(DisplayName::parse("Queen Alice").must("name")),
        locale: Some(Locale::parse("pt-BR").must("locale")),
        email_notifications: Some(false),
    };
    let updated = store.update_profile(alice.id, &change).await.must("update");
    let mut expected = alice.clone();
    expected.display_name = DisplayName::parse("Queen Alice").must("name");
    expected.locale = Locale::parse("pt-BR").must("locale");
    expected.email_notifications = false;
    assert_eq!(updated, expected);
    assert_eq!(store.get_user(alice.id).await.must("get"), expected);

    // Empty fields leave the stored values alone.
    let only_locale = ProfileChange {
        locale: Some(Locale::parse("de").must("locale")),
        ..ProfileChange::default()
    };
    let updated = store
        .update_profile(alice.id, &only_locale)
        .await
        .must("update");
    expected.locale = Locale::parse("de").must("locale");
    assert_eq!(updated, expected);
    assert_err!(
        store
            .update_profile(UserId::from_uuid(new_uuid()), &change)
            .await,
        StoreError::NotFound { .. },
        "update_profile of an unknown user"
    );
}

async fn status_cas<S: UserStore>(store: &S) {
    let alice = user("alice", at(0));
    store.insert_user(&alice).await.must("insert_user");
    let blocked = UserStatus::Blocked { until: at(3600) };
    let (active, permanent) = (UserStatus::Active, UserStatus::BlockedPermanently);

    let updated = store
        .update_user_status(alice.id, active, blocked)
        .await
        .must("block");
    assert_eq!(updated.status, blocked);
    assert_err!(
        store.update_user_status(alice.id, active, permanent).await,
        StoreError::Conflict { .. },
        "stale expected status"
    );
    let other_block = UserStatus::Blocked { until: at(60) };
    assert_err!(
        store
            .update_user_status(alice.id, other_block, permanent)
            .await,
        StoreError::Conflict { .. },
        "expected a block with another end"
    );
    assert_eq!(store.get_user(alice.id).await.must("get").status, blocked);

    store
        .update_user_status(alice.id, blocked, permanent)
        .await
        .must("block for good");
    let back = store
        .update_user_status(alice.id, permanent, active)
        .await
        .must("unblock");
    let mut expected = alice.clone();
    expected.status = active;
    assert_eq!(back, expected, "only the status changed");
    assert_err!(
        store
            .update_user_status(UserId::from_uuid(new_uuid()), active, blocked)
            .await,
        StoreError::NotFound { .. },
        "status change of an unknown user"
    );
}

async fn roles_entitlements_touch<S: UserStore>(store: &S) {
    let alice = user("alice", at(0));
    store.insert_user(&alice).await.must("insert_user");
    let (player, admin) = (Role::Player, Role::Admin);
    for (given, stored) in [
        (vec![admin], vec![player, admin]),
        (vec![admin, player, admin], vec![player, admin]),
        (vec![], vec![player]),
    ] {
        let updated = store.set_roles(alice.id, &given).await.must("set_roles");
        assert_eq!(updated.roles, stored, "roles after setting {given:?}");
        let read = store.get_user(alice.id).await.must("get");
        assert_eq!(read.roles, stored);
    }

    let limits = Entitlements {
        max_active_games: 12,
        may_host_games: false,
    };
    let updated = store
        .set_entitlements(alice.id, limits)
        .await
        .must("set_entitlements");
    assert_eq!(updated.entitlements, limits);

    store
        .touch_user(alice.id, at(100), Some("DE".to_owned()))
        .await
        .must("touch");
    store
        .touch_user(alice.id, at(200), None)
        .await
        .must("touch");
    let read = store.get_user(alice.id).await.must("get");
    assert_eq!((read.last_seen_at, read.country.as_str()), (at(200), "DE"));
    assert_eq!(read.created_at, alice.created_at);
    assert_eq!(read.entitlements, limits);

    let unknown = UserId::from_uuid(new_uuid());
    assert_err!(
        store.set_roles(unknown, &[admin]).await,
        StoreError::NotFound { .. },
        "set_roles of an unknown user"
    );
    assert_err!(
        store.set_entitlements(unknown, limits).await,
        StoreError::NotFound { .. },
        "set_entitlements of an unknown user"
    );
    assert_err!(
        store.touch_user(unknown, at(1), None).await,
        StoreError::NotFound { .. },
        "touch of an unknown user"
    );
}

async fn list_admins<S: UserStore>(store: &S) {
    // Inserted out of creation order, so the answer's order is the store's doing.
    let late_admin = user("late-admin", at(30));
    let player = user("player", at(10));
    let blocked_admin = user("blocked-admin", at(20));
    let early_admin = user("early-admin", at(0));
    for u in [&late_admin, &player, &blocked_admin, &early_admin] {
        store.insert_user(u).await.must("insert_user");
    }
    for admin in [&late_admin, &blocked_admin, &early_admin] {
        store
            .set_roles(admin.id, &[Role::Admin])
            .await
            .must("set_roles");
    }
    let blocked = UserStatus::BlockedPermanently;
    store
        .update_user_status(blocked_admin.id, blocked_admin.status, blocked)
        .await
        .must("block");
    // The store may hold other cases' users: look at ours only.
    let ours = [late_admin.id, player.id, blocked_admin.id, early_admin.id];
    let listed = |admins: Vec<User>| -> Vec<UserId> {
        admins
            .into_iter()
            .map(|u| u.id)
            .filter(|id| ours.contains(id))
            .collect()
    };
    let admins = store.list_admins().await.must("list_admins");
    assert!(
        admins.iter().all(|u| u.has_role(Role::Admin)),
        "list_admins answered a user without the admin role"
    );
    let blocked_read = admins.iter().find(|u| u.id == blocked_admin.id).cloned();
    assert_eq!(
        blocked_read.map(|u| u.status),
        Some(blocked),
        "a blocked admin is listed, with its status"
    );
    assert_eq!(
        listed(admins),
        vec![early_admin.id, blocked_admin.id, late_admin.id],
        "every admin, in creation order, and no player"
    );

    store
        .set_roles(late_admin.id, &[Role::Player])
        .await
        .must("demote");
    let after = store.list_admins().await.must("list_admins");
    assert_eq!(
        listed(after),
        vec![early_admin.id, blocked_admin.id],
        "a demoted admin is no longer listed"
    );
}
