//! The fenced code blocks of a Markdown file, each with how it is checked: the HTML comment
//! `<!-- check: KIND [detail] -->` on the line right before its opening fence.
//! `host-tests/tests/readme.rs` requires every block of the READMEs to carry one and runs the
//! check each kind names.

use std::path::Path;

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The file, relative to the workspace root.
    pub file: String,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The fence's info string (`sh`, `yaml`, or empty).
    pub info: String,
    /// What follows `check:` in the comment before the fence; empty when there is none.
    pub check: String,
    /// The block's lines, joined with `\n` (with a final `\n`).
    pub text: String,
}

impl Block {
    /// The first word of the check (`sh`, `output`, `not-runnable-here`, ...).
    pub fn kind(&self) -> &str {
        self.check.split_whitespace().next().unwrap_or("")
    }

    /// The rest of the check after its kind, trimmed.
    pub fn detail(&self) -> &str {
        self.check
            .trim_start()
            .split_once(char::is_whitespace)
            .map(|(_, rest)| rest.trim())
            .unwrap_or("")
    }

    /// `file:line`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Every fenced block of `relative` (a path under the workspace root). Panics on a fence that
/// is never closed.
pub fn blocks(relative: &str) -> Vec<Block> {
    let path = crate::workspace_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(relative, &text)
}

/// [`blocks`] of the given Markdown text.
pub fn parse(file: &str, markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let check = i
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix("<!--"))
            .and_then(|c| c.strip_suffix("-->"))
            .and_then(|c| c.trim().strip_prefix("check:"))
            .unwrap_or("")
            .trim()
            .to_owned();
        let start = i;
        let mut text = String::new();
        i += 1;
        while i < lines.len() && !lines[i].starts_with("```") {
            text.push_str(lines[i]);
            text.push('\n');
            i += 1;
        }
        assert!(
            i < lines.len(),
            "{file}:{}: code block never closed",
            start + 1
        );
        out.push(Block {
            file: file.to_owned(),
            line: start + 1,
            info: info.trim().to_owned(),
            check,
            text,
        });
        i += 1;
    }
    out
}

/// The commands of a shell block: continuation lines joined, comments and blank lines
/// dropped. Each item: (the command, the comment that followed it, if any).
pub fn shell_commands(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if pending.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        let (code, comment) = split_comment(line);
        if let Some(head) = code.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let command = pending.trim().to_owned();
        pending.clear();
        if !command.is_empty() {
            out.push((command, comment.trim().to_owned()));
        }
    }
    out
}

/// Splits a shell line at its first ` #` outside quotes.
fn split_comment(line: &str) -> (&str, &str) {
    let (mut single, mut double) = (false, false);
    let mut prev_space = true;
    for (at, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => {
                return (&line[..at], &line[at + 1..]);
            }
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    (line, "")
}

/// Whether `path` names a regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_carry_the_comment_before_their_fence() {
        let md = "x\n<!-- check: sh -->\n```sh\nmake a  # one\nb \\\n  c\n```\n\n```\nout\n```\n";
        let b = parse("f", md);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].kind(), b[0].info.as_str(), b[0].line),
            ("sh", "sh", 3)
        );
        assert_eq!(b[1].check, "");
        assert_eq!(
            shell_commands(&b[0].text),
            vec![
                ("make a".to_owned(), "one".to_owned()),
                ("b    c".to_owned(), String::new())
            ]
        );
        let d = parse(
            "f",
            "<!-- check: not-runnable-here (needs a registry) -->\n```\n```\n",
        );
        assert_eq!(d[0].detail(), "(needs a registry)");
    }
}
