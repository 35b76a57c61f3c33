//! The README's configuration reference leads from every field to its code and its test in one
//! hop: in each table with a `code / test` column, every row names at least one source file,
//! then (after ` / `) at least one test as `path::test_name`; every path exists and every named
//! test is a `fn` in its file. (Whether the test checks the field is for the reviewer; that the
//! pointer does not dangle is checked here.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

const COLUMN: &str = "code / test";

/// One table row's `code / test` cell, with the line it is on.
struct Cell {
    line: usize,
    field: String,
    text: String,
}

fn cells(readme: &str) -> Vec<Cell> {
    let mut out = Vec::new();
    let mut column: Option<usize> = None;
    for (i, line) in readme.lines().enumerate() {
        if !line.starts_with('|') {
            column = None;
            continue;
        }
        let parts: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        if parts
            .iter()
            .all(|p| p.chars().all(|c| c == '-' || c == '|'))
        {
            continue; // the separator row
        }
        match column {
            None => column = parts.iter().position(|p| *p == COLUMN).map(|c| c + 1),
            Some(0) => {}
            Some(c) => out.push(Cell {
                line: i + 1,
                field: parts[0].to_owned(),
                text: parts.get(c - 1).copied().unwrap_or_default().to_owned(),
            }),
        }
        if column.is_none() {
            column = Some(0); // a table without the column: skip its rows
        }
    }
    out
}

/// The backticked items of a cell part.
fn items(part: &str) -> Vec<&str> {
    part.split('`').skip(1).step_by(2).collect()
}

/// What is wrong with one cell, if anything.
fn problems(root: &Path, cell: &Cell) -> Vec<String> {
    let at = format!("README.md:{} ({})", cell.line, cell.field);
    let Some((code, tests)) = cell.text.split_once(" / ") else {
        return vec![format!("{at}: no ` / ` between code and tests")];
    };
    let (code, tests) = (items(code), items(tests));
    let mut out = Vec::new();
    if code.is_empty() || tests.is_empty() {
        out.push(format!("{at}: needs at least one code path and one test"));
    }
    for path in code {
        if !root.join(path).is_file() {
            out.push(format!("{at}: no file {path}"));
        }
    }
    for test in tests {
        let Some((path, name)) = test.split_once("::") else {
            out.push(format!("{at}: a test is `path::name`, not {test}"));
            continue;
        };
        match std::fs::read_to_string(root.join(path)) {
            Err(_) => out.push(format!("{at}: no file {path}")),
            Ok(text) if !text.contains(&format!("fn {name}(")) => {
                out.push(format!("{at}: no fn {name} in {path}"))
            }
            Ok(_) => {}
        }
    }
    out
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn every_field_names_code_and_tests_that_exist() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let cells = cells(&readme);
    // Top-level, RequestAuthentication, PeerAuthentication and `jwks:` fields.
    assert!(
        cells.len() >= 33,
        "only {} rows with `{COLUMN}`",
        cells.len()
    );
    for field in [
        "`tokenCache.maxBytes`",
        "`jwtRules[].presence`",
        "`portLevelMtls`",
        "`jwks.allowSymmetricKeys`",
    ] {
        assert!(cells.iter().any(|c| c.field == field), "no row for {field}");
    }
    let problems: Vec<String> = cells.iter().flat_map(|c| problems(root(), c)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check catches a dangling path, a missing test and a row without tests.
#[test]
fn the_check_finds_dangling_pointers() {
    let table = "| field | code / test |\n|---|---|\n\
        | `a` | `filter/src/lib.rs` / `filter/tests/layout.rs::only_the_adapter_uses_the_sdk` |\n\
        | `b` | `filter/src/nope.rs` / `filter/tests/layout.rs::only_the_adapter_uses_the_sdk` |\n\
        | `c` | `filter/src/lib.rs` / `filter/tests/layout.rs::no_such_test` |\n\
        | `d` | `filter/src/lib.rs` |\n\
        \n| field | meaning |\n|---|---|\n| `e` | no column |\n";
    let cells = cells(table);
    let fields: Vec<&str> = cells.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["`a`", "`b`", "`c`", "`d`"]);
    let found: Vec<usize> = cells.iter().map(|c| problems(root(), c).len()).collect();
    assert_eq!(found, [0, 1, 1, 1]);
}
