#![doc = include_str!("../README.md")]

mod client;
mod convert;
mod listener;
mod server;

pub use client::{
    Disconnect, HandlerFn, PushClient, PushClientConfig, PushClientError, PushHandler,
    STABLE_SUBSCRIPTION,
};
pub use convert::InvalidEvent;
pub use server::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, INTERNAL_TOKEN_HEADER, PushGrpcServer,
    ServeError,
};

/// The generated protobuf messages and gRPC stubs of `galaxy.push.v1`
/// (`proto/galaxy/push/v1/push.proto`): [`pb::PushEvent`],
/// [`pb::GatewaySubscribeRequest`], the raw client [`pb::push_client::PushClient`] and the
/// server trait [`pb::push_server::Push`].
///
/// The code is generated once and checked in (`src/generated/`), so building Galaxy needs
/// no `protoc`; the test `generated_code_matches_the_proto` regenerates it with `protoc`
/// and fails when the checked-in file is stale (`GALAXY_REGENERATE_PROTO=1` rewrites it).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!("generated/galaxy.push.v1.rs");
}
