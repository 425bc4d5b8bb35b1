#![doc = include_str!("../README.md")]

pub mod conformance;
pub mod memory;
pub mod system;

pub use galaxy_core::domain;
pub use galaxy_core::ports::*;

/// mockall mocks of every port (feature `mock`).
#[cfg(feature = "mock")]
pub mod mock {
    pub use galaxy_core::ports::{
        MockApplicationStore, MockChallengeStore, MockChangeBus, MockClock, MockContainerRuntime,
        MockEngineClient, MockGameStore, MockGeoCounterStore, MockGeoLocator, MockHealthEventStore,
        MockInboundMailStore, MockKeyRegistry, MockMailStore, MockMailer, MockNotificationStore,
        MockNotifier, MockOrdersDesk, MockOrdersStore, MockPbemStore, MockPushFeed, MockPushLog,
        MockPushPublisher, MockPushSubscriptions, MockRaceNameStore, MockRuntimeJobStore,
        MockRuntimeRecordStore, MockSecretGenerator, MockSessionRevoker, MockSessionStore,
        MockTurnArchiveStore, MockUserStore,
    };
}
