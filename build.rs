//! Generates include/osslquic.h with cbindgen, rewriting it only when its bytes change so
//! that make does not rebuild C code needlessly.

use std::path::Path;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config =
        cbindgen::Config::from_file(Path::new(&dir).join("cbindgen.toml")).expect("cbindgen.toml");
    let out = Path::new(&dir).join("include/osslquic.h");
    match cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => {
            let mut bytes = Vec::new();
            b.write(&mut bytes);
            if std::fs::read(&out).ok().as_deref() != Some(&bytes[..]) {
                std::fs::write(&out, &bytes).expect("write include/osslquic.h");
            }
        }
        Err(e) => panic!("cbindgen failed: {e}"),
    }
}
