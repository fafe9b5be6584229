//! Seeded mutants for the loom models (`models/run.sh`) and the fuzz
//! targets (`fuzz/run.sh`).
//!
//! Under `RUSTFLAGS="--cfg loom"` or `--cfg fuzzing` (which cargo-fuzz
//! passes) only, `NATRON_MUTANT=<name>` compiles natron with
//! `cfg(natron_mutant = "<name>")`: one deliberate bug that a model or the
//! fuzz corpus must catch. Selecting the mutant here rather than in `RUSTFLAGS`
//! keeps `RUSTFLAGS` the same for every mutant, so loom and its
//! dependencies are built once and each mutant recompiles only natron's
//! actor core (the only code a loom build compiles). Outside loom and fuzz
//! builds the variable is ignored: a normal build can never carry a mutant.

fn main() {
    println!("cargo:rerun-if-env-changed=NATRON_MUTANT");
    println!("cargo:rustc-check-cfg=cfg(loom)");
    println!("cargo:rustc-check-cfg=cfg(fuzzing)");
    println!("cargo:rustc-check-cfg=cfg(natron_mutant, values(any()))");
    if std::env::var_os("CARGO_CFG_LOOM").is_none()
        && std::env::var_os("CARGO_CFG_FUZZING").is_none()
    {
        return;
    }
    if let Ok(mutant) = std::env::var("NATRON_MUTANT") {
        if !mutant.is_empty() {
            assert!(
                mutant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "NATRON_MUTANT must be a mutant name, got {mutant:?}"
            );
            println!("cargo:rustc-cfg=natron_mutant=\"{mutant}\"");
        }
    }
}
