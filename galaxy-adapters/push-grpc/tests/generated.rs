//! The checked-in generated code (`src/generated/galaxy.push.v1.rs`) is what `protoc` and
//! tonic-prost-build make of `proto/galaxy/push/v1/push.proto` today, so the crate builds
//! without `protoc` and never drifts from its `.proto`. With `GALAXY_REGENERATE_PROTO=1`
//! the test rewrites the file instead of comparing. Needs `protoc` (scripts/test.sh
//! installs it), as only this test does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn generated_code_matches_the_proto() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir.join("../../proto");
    let proto = root.join("galaxy/push/v1/push.proto");
    let checked_in = crate_dir.join("src/generated/galaxy.push.v1.rs");
    let out = tempfile::tempdir().unwrap();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .out_dir(out.path())
        .compile_protos(&[proto], &[root])
        .expect(
            "protoc could not generate the code: install protobuf-compiler (scripts/test.sh \
             does) or set PROTOC",
        );
    let fresh = std::fs::read_to_string(out.path().join("galaxy.push.v1.rs")).unwrap();
    if std::env::var("GALAXY_REGENERATE_PROTO").as_deref() == Ok("1") {
        std::fs::write(&checked_in, &fresh).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&checked_in).unwrap();
    assert!(
        stored == fresh,
        "{} is stale: run `GALAXY_REGENERATE_PROTO=1 cargo test -p galaxy-push-grpc --test generated` and commit the result",
        checked_in.display()
    );
}
