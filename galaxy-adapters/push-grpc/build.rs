//! Compiles `proto/galaxy/push/v1/push.proto` into the server and client stubs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    // Printed with Display, not as the Debug of an `Err` returned from main.
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto = root.join("galaxy/push/v1/push.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-env-changed=PROTOC");

    // prost-build finds protoc through $PROTOC or $PATH; say plainly what to install when
    // neither works, rather than letting the build fail deep inside code generation.
    let protoc = std::env::var_os("PROTOC").unwrap_or_else(|| "protoc".into());
    if Command::new(&protoc).arg("--version").output().is_err() {
        return Err(format!(
            "galaxy-push-grpc needs the Protocol Buffers compiler `protoc` to build, and \
             {protoc:?} could not be run. Install it (Debian/Ubuntu: \
             `apt-get install -y protobuf-compiler`) or set PROTOC to its path."
        )
        .into());
    }

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&[proto], &[root])?;
    Ok(())
}
