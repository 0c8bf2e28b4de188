//! Edit sequences: the debugger's targets, from a buggy program to the correct one.
//!
//! 1. [`editops`] is python-Levenshtein's `editops` (0.12), the alignment SED uses, with its exact
//!    tie-breaking: strip the common prefix and suffix, fill the cost matrix, walk back from the
//!    bottom-right cell preferring to continue in the current direction, then a free match, then a
//!    replacement, then an insertion, then a deletion. Positions are those python-Levenshtein
//!    reports (`("insert", i, j)` inserts `target[j]` before `source[i]`).
//! 2. [`op_stream`] merges them into one op per source position, KEEP where nothing happens:
//!    `KEEP`, `DELETE`, `INSERT(t)` (emitted before the source token it precedes) and
//!    `REPLACE(t)`; trailing insertions sit at position `len(source)`.
//! 3. [`EditOp::id`] numbers the 90 decoder outputs: `0 <s>`, `1 </s>`, `2 KEEP`, `3 DELETE`,
//!    `4 + 2v INSERT(v)`, `5 + 2v REPLACE(v)` for vocabulary id `v`.
//! 4. [`TeacherForcing`] builds the decoder's input and output sequences for training, and
//!    [`apply`] decodes an op stream back into tokens with the debugger's source pointer.
//! 5. [`describe_edits`] says an op stream in words, for people.

use std::fmt;

use crate::lang::Token;

/// An operation of python-Levenshtein's `editops`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LevOp {
    Insert,
    Delete,
    Replace,
}

impl LevOp {
    pub fn name(self) -> &'static str {
        match self {
            LevOp::Insert => "insert",
            LevOp::Delete => "delete",
            LevOp::Replace => "replace",
        }
    }

    pub fn from_name(name: &str) -> Option<LevOp> {
        match name {
            "insert" => Some(LevOp::Insert),
            "delete" => Some(LevOp::Delete),
            "replace" => Some(LevOp::Replace),
            _ => None,
        }
    }
}

/// One `editops` entry: the operation, its source position and its destination position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LevEdit {
    pub op: LevOp,
    pub src: usize,
    pub dst: usize,
}

/// python-Levenshtein's `editops(source, target)`, exactly, on any comparable symbols.
pub fn editops<T: PartialEq>(source: &[T], target: &[T]) -> Vec<LevEdit> {
    // Strip the common prefix, then the common suffix.
    let prefix = source
        .iter()
        .zip(target)
        .take_while(|(a, b)| a == b)
        .count();
    let (s, t) = (&source[prefix..], &target[prefix..]);
    let suffix = s
        .iter()
        .rev()
        .zip(t.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (s, t) = (&s[..s.len() - suffix], &t[..t.len() - suffix]);
    let (rows, cols) = (s.len() + 1, t.len() + 1);

    // Cost matrix, row-major: rows over the source, columns over the target.
    let mut cost = vec![0usize; rows * cols];
    for (j, c) in cost[..cols].iter_mut().enumerate() {
        *c = j;
    }
    for i in 1..rows {
        cost[i * cols] = i;
        for j in 1..cols {
            let diagonal = cost[(i - 1) * cols + j - 1] + usize::from(s[i - 1] != t[j - 1]);
            let left = cost[i * cols + j - 1] + 1;
            let up = cost[(i - 1) * cols + j] + 1;
            cost[i * cols + j] = diagonal.min(left).min(up);
        }
    }

    // Walk back, preferring to continue in the same direction (-1: inserting, +1: deleting).
    let mut ops = Vec::with_capacity(cost[rows * cols - 1]);
    let (mut i, mut j) = (rows - 1, cols - 1);
    let mut dir = 0i8;
    let at = |i: usize, j: usize| cost[i * cols + j];
    while i > 0 || j > 0 {
        let here = at(i, j);
        let insert_ok = j > 0 && here == at(i, j - 1) + 1;
        let delete_ok = i > 0 && here == at(i - 1, j) + 1;
        if dir < 0 && insert_ok {
            j -= 1;
            ops.push((LevOp::Insert, i, j));
        } else if dir > 0 && delete_ok {
            i -= 1;
            ops.push((LevOp::Delete, i, j));
        } else if i > 0 && j > 0 && here == at(i - 1, j - 1) && s[i - 1] == t[j - 1] {
            i -= 1;
            j -= 1;
            dir = 0;
        } else if i > 0 && j > 0 && here == at(i - 1, j - 1) + 1 {
            i -= 1;
            j -= 1;
            ops.push((LevOp::Replace, i, j));
            dir = 0;
        } else if insert_ok && (dir == 0 || !delete_ok) {
            // python-Levenshtein only turns here from direction 0; a valid cost matrix never
            // needs the other case, which would abort there.
            j -= 1;
            ops.push((LevOp::Insert, i, j));
            dir = -1;
        } else {
            i -= 1;
            ops.push((LevOp::Delete, i, j));
            dir = 1;
        }
    }
    ops.reverse();
    ops.into_iter()
        .map(|(op, src, dst)| LevEdit {
            op,
            src: src + prefix,
            dst: dst + prefix,
        })
        .collect()
}

/// Number of edits (the Levenshtein distance).
pub fn distance<T: PartialEq>(source: &[T], target: &[T]) -> usize {
    editops(source, target).len()
}

/// One op of the debugger's output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EditOp {
    /// Start of the op sequence (decoder input only).
    Start,
    /// End of the op sequence.
    End,
    /// Copy the source token at the pointer.
    Keep,
    /// Skip the source token at the pointer.
    Delete,
    /// Emit a token without consuming the source.
    Insert(Token),
    /// Emit a token in place of the source token at the pointer.
    Replace(Token),
}

/// Number of distinct ops: `<s>`, `</s>`, KEEP, DELETE, and INSERT/REPLACE of each of the 43
/// tokens.
pub const NUM_OPS: usize = 4 + 2 * crate::lang::VOCAB_SIZE;

impl EditOp {
    /// The op's id in the decoder's output layer.
    pub fn id(self) -> u8 {
        match self {
            EditOp::Start => 0,
            EditOp::End => 1,
            EditOp::Keep => 2,
            EditOp::Delete => 3,
            EditOp::Insert(t) => 4 + 2 * t.id(),
            EditOp::Replace(t) => 5 + 2 * t.id(),
        }
    }

    /// The op with id `id`.
    pub fn from_id(id: u8) -> Option<EditOp> {
        Some(match id {
            0 => EditOp::Start,
            1 => EditOp::End,
            2 => EditOp::Keep,
            3 => EditOp::Delete,
            _ if (id as usize) < NUM_OPS => {
                let token = Token::from_id((id - 4) / 2)?;
                if id.is_multiple_of(2) {
                    EditOp::Insert(token)
                } else {
                    EditOp::Replace(token)
                }
            }
            _ => return None,
        })
    }

    /// Whether decoding this op moves the source pointer forward.
    pub fn advances_pointer(self) -> bool {
        matches!(self, EditOp::Keep | EditOp::Delete | EditOp::Replace(_))
    }

    /// The token this op emits, given the source token under the pointer.
    pub fn emitted(self, at_pointer: Option<Token>) -> Option<Token> {
        match self {
            EditOp::Keep => at_pointer,
            EditOp::Insert(t) | EditOp::Replace(t) => Some(t),
            EditOp::Start | EditOp::End | EditOp::Delete => None,
        }
    }
}

impl fmt::Display for EditOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditOp::Start => f.write_str("<s>"),
            EditOp::End => f.write_str("</s>"),
            EditOp::Keep => f.write_str("KEEP"),
            EditOp::Delete => f.write_str("DELETE"),
            EditOp::Insert(t) => write!(f, "INSERT[{t}]"),
            EditOp::Replace(t) => write!(f, "REPLACE[{t}]"),
        }
    }
}

impl EditOp {
    /// Parses the `Display` form (`KEEP`, `DELETE`, `INSERT[move]`, `REPLACE[R=3]`, `<s>`, `</s>`).
    pub fn parse(text: &str) -> Option<EditOp> {
        let token = |inner: &str| inner.strip_suffix(']').and_then(Token::from_text);
        match text {
            "<s>" => Some(EditOp::Start),
            "</s>" => Some(EditOp::End),
            "KEEP" => Some(EditOp::Keep),
            "DELETE" => Some(EditOp::Delete),
            _ => {
                if let Some(inner) = text.strip_prefix("INSERT[") {
                    token(inner).map(EditOp::Insert)
                } else {
                    text.strip_prefix("REPLACE[")
                        .and_then(token)
                        .map(EditOp::Replace)
                }
            }
        }
    }
}

/// An op of the stream with the source position it applies at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PositionedOp {
    pub op: EditOp,
    /// Source position: the token the op keeps, deletes or replaces, or the one an insertion
    /// precedes (`len(source)` at the end).
    pub position: usize,
}

/// The per-source-position op stream turning `source` into `target` (without the final `</s>`).
pub fn op_stream(source: &[Token], target: &[Token]) -> Vec<PositionedOp> {
    let edits = editops(source, target);
    let mut stream = Vec::with_capacity(source.len() + edits.len());
    let mut next = edits.iter().peekable();
    for position in 0..=source.len() {
        // Insertions before this position.
        while let Some(edit) = next.next_if(|e| e.op == LevOp::Insert && e.src == position) {
            stream.push(PositionedOp {
                op: EditOp::Insert(target[edit.dst]),
                position,
            });
        }
        if position == source.len() {
            break;
        }
        let op = match next.next_if(|e| e.src == position) {
            Some(edit) if edit.op == LevOp::Replace => EditOp::Replace(target[edit.dst]),
            Some(_) => EditOp::Delete,
            None => EditOp::Keep,
        };
        stream.push(PositionedOp { op, position });
    }
    stream
}

/// Applies an op stream to `source` with the debugger's pointer rules: KEEP copies the token under
/// the pointer, DELETE skips it, REPLACE(t) emits t and skips it, INSERT(t) emits t; `</s>` stops
/// (source tokens not yet consumed are dropped), `<s>` does nothing. A KEEP past the end of the
/// source emits nothing.
pub fn apply(source: &[Token], ops: impl IntoIterator<Item = EditOp>) -> Vec<Token> {
    let mut out = Vec::with_capacity(source.len() + 8);
    let mut pointer = 0;
    for op in ops {
        if op == EditOp::End {
            break;
        }
        if let Some(token) = op.emitted(source.get(pointer).copied()) {
            out.push(token);
        }
        if op.advances_pointer() {
            pointer += 1;
        }
    }
    out
}

/// The ops the decoder may output with the pointer at `pointer` over a source of `source_len`
/// tokens (§6 logit masks): never `<s>`; once the pointer reaches the appended `</S>` (or the
/// source is empty) only `</s>` and insertions; before that anything, an early `</s>` included.
pub fn allowed(op: EditOp, pointer: usize, source_len: usize) -> bool {
    match op {
        EditOp::Start => false,
        EditOp::End | EditOp::Insert(_) => true,
        EditOp::Keep | EditOp::Delete | EditOp::Replace(_) => pointer < source_len,
    }
}

/// What the decoder is fed at step 0 as the previous token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FirstToken {
    /// `<S>` (id 0), what inference feeds; the default.
    #[default]
    Start,
    /// `<UNK>` (id 2): SED's training code looks up the lower-case string `'<s>'`, which is not in
    /// the vocabulary. For results comparable with SED's trained models.
    CompatUnknown,
}

/// The teacher-forcing sequences of one training example (§6): `steps = ops + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeacherForcing {
    /// Previous op fed at each step (`<s>` first).
    pub prev_ops: Vec<EditOp>,
    /// Source position whose code memory is read at each step (the appended `</S>` is position
    /// `len(source)`).
    pub positions: Vec<usize>,
    /// Last emitted token fed at each step (`<UNK>` after a DELETE).
    pub last_tokens: Vec<Token>,
    /// The op to predict at each step (the stream, then `</s>`).
    pub targets: Vec<EditOp>,
}

impl TeacherForcing {
    /// Builds the sequences for the op stream from `source` to `target`.
    pub fn new(source: &[Token], target: &[Token], first: FirstToken) -> TeacherForcing {
        let stream = op_stream(source, target);
        let steps = stream.len() + 1;
        let mut tf = TeacherForcing {
            prev_ops: Vec::with_capacity(steps),
            positions: Vec::with_capacity(steps),
            last_tokens: Vec::with_capacity(steps),
            targets: Vec::with_capacity(steps),
        };
        let mut prev = EditOp::Start;
        let mut last = match first {
            FirstToken::Start => Token::Start,
            FirstToken::CompatUnknown => Token::Unknown,
        };
        for step in &stream {
            tf.prev_ops.push(prev);
            tf.positions.push(step.position);
            tf.last_tokens.push(last);
            tf.targets.push(step.op);
            last = step
                .op
                .emitted(source.get(step.position).copied())
                .unwrap_or(Token::Unknown);
            prev = step.op;
        }
        tf.prev_ops.push(prev);
        tf.positions.push(source.len());
        tf.last_tokens.push(last);
        tf.targets.push(EditOp::End);
        tf
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// The edits from `source` to `target` in words, runs of neighbouring edits of one kind merged:
/// "delete `IFELSE c(` at 4–5", "insert `move move` at 7", "replace `move` at 3 by `turnLeft`".
pub fn describe_edits(source: &[Token], target: &[Token]) -> Vec<String> {
    /// Neighbouring edits of one kind.
    struct Run {
        kind: EditKind,
        first: usize,
        last: usize,
        old: Vec<Token>,
        new: Vec<Token>,
    }
    #[derive(PartialEq)]
    enum EditKind {
        Delete,
        Insert,
        Replace,
    }
    let mut runs: Vec<Run> = Vec::new();
    for p in op_stream(source, target) {
        let (kind, old, new) = match p.op {
            EditOp::Delete => (EditKind::Delete, Some(source[p.position]), None),
            EditOp::Insert(t) => (EditKind::Insert, None, Some(t)),
            EditOp::Replace(t) => (EditKind::Replace, Some(source[p.position]), Some(t)),
            _ => continue,
        };
        // Insertions extend a run at the same position, the others at the next one.
        let extends = runs.last().is_some_and(|r| {
            r.kind == kind
                && if kind == EditKind::Insert {
                    r.last == p.position
                } else {
                    r.last + 1 == p.position
                }
        });
        if !extends {
            runs.push(Run {
                kind,
                first: p.position,
                last: p.position,
                old: Vec::new(),
                new: Vec::new(),
            });
        }
        let run = runs.last_mut().expect("pushed");
        run.last = p.position;
        run.old.extend(old);
        run.new.extend(new);
    }
    runs.into_iter()
        .map(|run| {
            let at = if run.first == run.last {
                run.first.to_string()
            } else {
                format!("{}–{}", run.first, run.last)
            };
            let (old, new) = (
                crate::lang::token::tokens_to_string(&run.old),
                crate::lang::token::tokens_to_string(&run.new),
            );
            match run.kind {
                EditKind::Delete => format!("delete `{old}` at {at}"),
                EditKind::Insert => format!("insert `{new}` at {at}"),
                EditKind::Replace => format!("replace `{old}` at {at} by `{new}`"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        text.split_whitespace()
            .map(|w| Token::from_text(w).unwrap())
            .collect()
    }

    #[test]
    fn op_ids_cover_the_90_op_vocabulary() {
        for id in 0..NUM_OPS as u8 {
            let op = EditOp::from_id(id).unwrap();
            assert_eq!(op.id(), id);
            assert_eq!(EditOp::parse(&op.to_string()), Some(op));
        }
        assert_eq!(EditOp::from_id(90), None);
        assert_eq!(EditOp::Insert(Token::Move).id(), 12);
        assert_eq!(EditOp::Replace(Token::R10).id(), 89);
    }

    #[test]
    fn stream_and_teacher_forcing_of_a_small_repair() {
        let source = tokens("DEF run m( move turnLeft m)");
        let target = tokens("DEF run m( putMarker turnLeft move m)");
        let stream: Vec<String> = op_stream(&source, &target)
            .iter()
            .map(|p| format!("{}@{}", p.op, p.position))
            .collect();
        assert_eq!(
            stream,
            [
                "KEEP@0",
                "KEEP@1",
                "KEEP@2",
                "REPLACE[putMarker]@3",
                "KEEP@4",
                "INSERT[move]@5",
                "KEEP@5"
            ]
        );
        let ops: Vec<EditOp> = op_stream(&source, &target).iter().map(|p| p.op).collect();
        assert_eq!(apply(&source, ops.iter().copied()), target);
        let tf = TeacherForcing::new(&source, &target, FirstToken::Start);
        assert_eq!(tf.len(), ops.len() + 1);
        assert_eq!(tf.prev_ops[0], EditOp::Start);
        assert_eq!(tf.last_tokens[0], Token::Start);
        assert_eq!(tf.last_tokens[4], Token::PutMarker);
        assert_eq!(*tf.positions.last().unwrap(), source.len());
        assert_eq!(*tf.targets.last().unwrap(), EditOp::End);
        let compat = TeacherForcing::new(&source, &target, FirstToken::CompatUnknown);
        assert_eq!(compat.last_tokens[0], Token::Unknown);
        // After a DELETE the last token is <UNK>.
        let tf = TeacherForcing::new(
            &tokens("move turnLeft"),
            &tokens("turnLeft"),
            FirstToken::Start,
        );
        assert_eq!(tf.targets[0], EditOp::Delete);
        assert_eq!(tf.last_tokens[1], Token::Unknown);
    }

    #[test]
    fn masks_follow_the_pointer() {
        assert!(!allowed(EditOp::Start, 0, 5));
        assert!(allowed(EditOp::End, 0, 5));
        assert!(allowed(EditOp::Keep, 4, 5));
        assert!(!allowed(EditOp::Keep, 5, 5));
        assert!(!allowed(EditOp::Replace(Token::Move), 0, 0));
        assert!(allowed(EditOp::Insert(Token::Move), 5, 5));
    }
}
