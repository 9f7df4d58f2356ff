//! Parser tests: the reference example, one test per error class (exact
//! line:column and message), printing expressions back, and property tests
//! showing the parser never panics.

use pinlab_scenario::ast::{ActorKind, ExpectKind, Expr, ExprKind, Span};
use pinlab_scenario::{parse, ParseError};
use proptest::prelude::*;

const EXAMPLE: &str = r#"# fork-after-pin: pinned anonymous memory, then fork()   (comments: '#' to end of line)
scenario fork-after-pin
title "RDMA MR over anonymous memory, then fork(); the parent writes"
cite "policies.md F7: COW divergence at fork"
cite "seed 004 (Gunthorpe, 2018-06-18): ..."

setup {
    thp = madvise
    user_zone = ZONE_MOVABLE
}

process parent {
    buf = mmap(4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
    memset(buf, 'P', 4K)
    mr = ibv_reg_mr(buf, 4K, IBV_ACCESS_LOCAL_WRITE|IBV_ACCESS_REMOTE_WRITE)
    fork(child)
    memset(buf, 'Q', 4K); load(buf + 4K, 2 * 4K)
    wait(remote)
    load(buf, 4K)
}

child child of parent {
    load(buf, 4K)
}

peer remote {
    rdma_write(parent.mr, 'D')
    rdma_read(parent.mr)
}

expect legacy   = OK, LOST, LEAK_OTHER
expect upstream = OK
expect pgflag includes LOST
expect longterm excludes ERR(EFAULT)
expect upstream+bounce_writeback = OK
"#;

fn sp(line: u32, col: u32) -> Span {
    Span { line, col }
}

fn err(src: &str) -> ParseError {
    match parse("t.scn", src) {
        Ok(f) => panic!("expected an error, parsed {f:#?}"),
        Err(e) => e,
    }
}

/// Asserts the error is at `line:col` and its message contains `needle`.
#[track_caller]
fn assert_err(src: &str, line: u32, col: u32, needle: &str) {
    let e = err(src);
    assert_eq!((e.line, e.col), (line, col), "wrong position for: {e}");
    assert!(
        e.message.contains(needle),
        "message {:?} lacks {needle:?}",
        e.message
    );
    assert_eq!(e.file, "t.scn");
}

fn idents(e: &Expr) -> Vec<&str> {
    e.flag_names().expect("a flag union")
}

#[test]
fn example_header_and_setup() {
    let f = parse("fork.scn", EXAMPLE).unwrap();
    assert_eq!(f.name, "fork-after-pin");
    assert_eq!(f.name_span, sp(2, 10));
    assert_eq!(
        f.title.as_deref(),
        Some("RDMA MR over anonymous memory, then fork(); the parent writes")
    );
    assert_eq!(
        f.cites,
        [
            "policies.md F7: COW divergence at fork",
            "seed 004 (Gunthorpe, 2018-06-18): ..."
        ]
    );
    assert_eq!(f.setup.len(), 2);
    assert_eq!(f.setup[0].key, "thp");
    assert_eq!(f.setup[0].span, sp(8, 5));
    assert_eq!(f.setup[0].value.kind, ExprKind::Ident("madvise".into()));
    assert_eq!(f.setup[1].key, "user_zone");
    assert_eq!(f.setup[1].value.to_string(), "ZONE_MOVABLE");
}

#[test]
fn example_actors() {
    let f = parse("fork.scn", EXAMPLE).unwrap();
    let names: Vec<_> = f.actors.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["parent", "child", "remote"]);
    let parent = f.actor("parent").unwrap();
    assert_eq!(parent.kind, ActorKind::Process);
    assert_eq!(parent.span, sp(12, 9));
    let child = f.actor("child").unwrap();
    assert_eq!(
        child.kind,
        ActorKind::Child {
            parent: "parent".into(),
            parent_span: sp(22, 16),
            thread: false
        }
    );
    assert_eq!(f.actor("remote").unwrap().kind, ActorKind::Peer);
    assert!(f.actor("nobody").is_none());

    // parent: 8 statements (two on one line, split by ';').
    let calls: Vec<_> = parent.body.iter().map(|s| s.call.as_str()).collect();
    assert_eq!(
        calls,
        [
            "mmap",
            "memset",
            "ibv_reg_mr",
            "fork",
            "memset",
            "load",
            "wait",
            "load"
        ]
    );
    let mmap = &parent.body[0];
    assert_eq!(mmap.bind, Some(("buf".to_string(), sp(13, 5))));
    assert_eq!(mmap.span, sp(13, 5));
    assert_eq!(mmap.call_span, sp(13, 11));
    assert_eq!(mmap.args.len(), 3);
    assert_eq!(mmap.args[0].as_int(), Some(4096));
    assert_eq!(mmap.args[0].span, sp(13, 16));
    assert_eq!(idents(&mmap.args[1]), ["PROT_READ", "PROT_WRITE"]);
    assert_eq!(idents(&mmap.args[2]), ["MAP_PRIVATE", "MAP_ANONYMOUS"]);

    let memset = &parent.body[1];
    assert_eq!(memset.bind, None);
    assert_eq!(memset.args[1].kind, ExprKind::Char('P'));
    let reg = &parent.body[2];
    assert_eq!(reg.bind.as_ref().unwrap().0, "mr");
    assert_eq!(
        idents(&reg.args[2]),
        ["IBV_ACCESS_LOCAL_WRITE", "IBV_ACCESS_REMOTE_WRITE"]
    );
    assert_eq!(parent.body[3].args[0].kind, ExprKind::Ident("child".into()));

    let load = &parent.body[5];
    assert_eq!(load.span, sp(17, 27));
    assert!(matches!(load.args[0].kind, ExprKind::Add(..)));
    assert_eq!(load.args[0].to_string(), "buf + 4096");
    assert_eq!(load.args[0].as_int(), None);
    assert!(matches!(load.args[1].kind, ExprKind::Mul(..)));
    assert_eq!(load.args[1].as_int(), Some(8192));
    assert_eq!(load.args[1].to_string(), "2 * 4096");

    let remote = f.actor("remote").unwrap();
    assert_eq!(
        remote.body[0].args[0].kind,
        ExprKind::Field("parent".into(), "mr".into())
    );
    assert_eq!(remote.body[0].args[1].to_string(), "'D'");
    assert_eq!(remote.body[1].call, "rdma_read");
}

#[test]
fn example_expects() {
    let f = parse("fork.scn", EXAMPLE).unwrap();
    let lines: Vec<_> = f
        .expects
        .iter()
        .map(|e| {
            let outs: Vec<_> = e.outcomes.iter().map(|o| o.to_string()).collect();
            (e.policy.as_str(), e.kind, outs.join(","))
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                "legacy",
                ExpectKind::Exactly,
                "OK,LOST,LEAK_OTHER".to_string()
            ),
            ("upstream", ExpectKind::Exactly, "OK".into()),
            ("pgflag", ExpectKind::Includes, "LOST".into()),
            ("longterm", ExpectKind::Excludes, "ERR(EFAULT)".into()),
            (
                "upstream+bounce_writeback",
                ExpectKind::Exactly,
                "OK".into()
            ),
        ]
    );
    let e = &f.expects[3];
    assert_eq!(e.span, sp(34, 1));
    assert_eq!(e.policy_span, sp(34, 8));
    assert_eq!(e.outcomes[0].name, "ERR");
    assert_eq!(e.outcomes[0].arg.as_deref(), Some("EFAULT"));
    assert_eq!(e.outcomes[0].span, sp(34, 26));
}

#[test]
fn literals_and_policy_names() {
    let src = "scenario s-1\nprocess p { x = f(0x1000, 2M, 1G, 512, 0x10K, true, false, \"a\\\"b\\\\\", '\\'', 3 * (4K + 1)) }\n\
               expect pwrite-race + bounce_writeback includes OK";
    let f = parse("t.scn", src).unwrap();
    let a = &f.actors[0].body[0].args;
    let ints: Vec<_> = a[..5].iter().map(|e| e.as_int().unwrap()).collect();
    assert_eq!(ints, [4096, 2 << 20, 1 << 30, 512, 16 << 10]);
    assert_eq!(a[5].kind, ExprKind::Bool(true));
    assert_eq!(a[6].kind, ExprKind::Bool(false));
    assert_eq!(a[7].kind, ExprKind::Str("a\"b\\".into()));
    assert_eq!(a[7].to_string(), r#""a\"b\\""#);
    assert_eq!(a[8].kind, ExprKind::Char('\''));
    assert_eq!(a[9].as_int(), Some(3 * 4097));
    assert_eq!(a[9].to_string(), "3 * (4096 + 1)");
    assert_eq!(f.expects[0].policy, "pwrite-race+bounce_writeback");
}

#[test]
fn flag_union_flattens_and_binds_loosest() {
    let f = parse(
        "t.scn",
        "scenario s\nprocess p { f(A | (B|C) | D + 1, (A)) }",
    )
    .unwrap();
    let args = &f.actors[0].body[0].args;
    let ExprKind::Or(items) = &args[0].kind else {
        panic!("not an Or: {:?}", args[0]);
    };
    assert_eq!(items.len(), 4);
    assert!(matches!(items[3].kind, ExprKind::Add(..)));
    assert_eq!(args[0].to_string(), "A|B|C|D + 1");
    assert_eq!(args[0].flag_names(), None);
    assert_eq!(args[1].kind, ExprKind::Ident("A".into()));
    assert_eq!(args[1].span, sp(2, 35)); // the inner expression's position
}

#[test]
fn one_line_blocks_comments_and_columns() {
    // Tabs count as one column; columns count characters, not bytes.
    let src = "scenario s # c\n\tsetup { thp = never }\ntitle \"é\"; process p { load(x); load(y) } # end";
    let f = parse("t.scn", src).unwrap();
    assert_eq!(f.setup[0].span, sp(2, 10));
    assert_eq!(f.actors[0].body.len(), 2);
    assert_eq!(f.actors[0].span, sp(3, 20));
    assert_eq!(f.actors[0].body[1].span, sp(3, 33));
    let e = err("scenario s\ntitle \"éé\" x");
    assert_eq!((e.line, e.col), (2, 12));
}

#[test]
fn missing_close_paren() {
    assert_err(
        "scenario s\nprocess p {\n    memset(buf, 'P'\n}",
        3,
        20,
        "expected ')' or ',' after argument, found newline",
    );
    let e = err("scenario s\nprocess p {\n    memset(buf, 'P'\n}");
    assert_eq!(
        e.to_string(),
        "t.scn:3:20: expected ')' or ',' after argument, found newline"
    );
}

#[test]
fn bad_token() {
    assert_err(
        "scenario s\nprocess p {\n  load(buf,, 4K)\n}",
        3,
        12,
        "expected argument after ',', found ','",
    );
    assert_err(
        "scenario s\nprocess p {\n  load buf\n}",
        3,
        8,
        "expected '(' after \"load\", found identifier \"buf\"",
    );
    assert_err(
        "scenario s\nsetup { thp madvise }",
        2,
        13,
        "expected '=' after setup key \"thp\", found identifier \"madvise\"",
    );
    assert_err(
        "scenario s\nprocess p {\n  x = load(a-b)\n}",
        3,
        12,
        "found name \"a-b\"",
    );
    assert_err(
        "scenario s\nprocess p\n{ }",
        2,
        10,
        "expected '{' opening the body of process p, found newline",
    );
}

#[test]
fn unterminated_literals() {
    assert_err(
        "scenario s\ntitle \"abc\ncite \"x\"",
        2,
        7,
        "unterminated string literal",
    );
    assert_err(
        "scenario s\ntitle \"abc\\",
        2,
        7,
        "unterminated string literal",
    );
    assert_err(
        "scenario s\nprocess p { memset(b, 'P, 4K) }",
        2,
        23,
        "unterminated character literal",
    );
    assert_err(
        "scenario s\nprocess p { f('') }",
        2,
        15,
        "empty character literal",
    );
    assert_err("scenario s\ntitle \"a\\n\"", 2, 9, "unknown escape '\\n'");
    assert_err(
        "scenario s\nprocess p {\n  f(x)\n",
        4,
        1,
        "expected '}' closing the body of process p opened at 2:11, found end of file",
    );
}

#[test]
fn int_overflow() {
    assert_err(
        "scenario s\nprocess p { f(18446744073709551616) }",
        2,
        15,
        "integer literal out of range",
    );
    assert_err(
        "scenario s\nprocess p { f(0xFFFFFFFFFFFFFFFFK) }",
        2,
        15,
        "integer literal out of range",
    );
    assert_err(
        "scenario s\nprocess p { f(17179869184G) }",
        2,
        15,
        "integer literal out of range",
    );
    assert_err(
        "scenario s\nprocess p { f(4k) }",
        2,
        15,
        "invalid integer literal",
    );
    assert_err("scenario s\nprocess p { f(0x) }", 2, 15, "hex digits");
    // In range by itself, but folding overflows: as_int says None.
    let f = parse("t.scn", "scenario s\nprocess p { f(16G * 16G * 16G) }").unwrap();
    assert_eq!(f.actors[0].body[0].args[0].as_int(), None);
}

#[test]
fn unknown_actor_kind_keyword() {
    assert_err(
        "scenario s\ntask t {\n}",
        2,
        1,
        "expected a top-level item (scenario, title, cite, setup, process, child, thread, \
         peer, kthread or expect), found identifier \"task\"",
    );
    // `thread` needs its process.
    assert_err(
        "scenario s\nthread t {\n}",
        2,
        10,
        "expected 'of' after 'thread t'",
    );
}

#[test]
fn duplicate_actor() {
    assert_err(
        "scenario s\nprocess a { f() }\npeer b { }\nkthread a { }",
        4,
        9,
        "duplicate actor name \"a\" (first declared as process at 2:9)",
    );
}

#[test]
fn child_of_unknown_parent() {
    assert_err(
        "scenario s\nchild c of nobody { }\nprocess p { fork(c) }",
        2,
        12,
        "unknown parent \"nobody\" of child c",
    );
    assert_err(
        "scenario s\npeer r { }\nchild c of r { }",
        3,
        12,
        "is a peer; only a process, child or thread can fork",
    );
    assert_err(
        "scenario s\nchild a of b { }\nchild b of a { }",
        2,
        12,
        "cycle",
    );
    // A parent declared later in the file is fine, as is a grandchild.
    let f = parse(
        "t.scn",
        "scenario s\nchild g of c { }\nchild c of p { }\nprocess p { }",
    )
    .unwrap();
    assert_eq!(f.actors.len(), 3);
}

#[test]
fn missing_scenario_line() {
    assert_err(
        "process p { f() }\n",
        1,
        1,
        "missing required 'scenario NAME' line",
    );
    assert_err("", 1, 1, "missing required 'scenario NAME' line");
}

#[test]
fn duplicate_header_items() {
    assert_err(
        "scenario a\nscenario b",
        2,
        1,
        "duplicate 'scenario' line (first at 1:10)",
    );
    assert_err(
        "scenario a\ntitle \"x\"\n title \"y\"",
        3,
        2,
        "duplicate 'title' line",
    );
    assert_err(
        "scenario a\nsetup { }\nsetup { }",
        3,
        1,
        "duplicate 'setup' block",
    );
    assert_err(
        "scenario a\nsetup {\n x = 1\n x = 2\n}",
        4,
        2,
        "duplicate setup key \"x\" (first at 3:2)",
    );
    assert_err(
        "scenario a\nexpect up = OK\nexpect up = LOST",
        3,
        8,
        "duplicate exact expectation for policy up (first at 2:8)",
    );
}

#[test]
fn bad_outcome_syntax() {
    assert_err(
        "scenario s\nexpect legacy = ERR(EFAULT",
        2,
        27,
        "expected ')' after outcome ERR(EFAULT, found end of file",
    );
    assert_err(
        "scenario s\nexpect legacy = ERR()",
        2,
        21,
        "expected argument of outcome ERR",
    );
    assert_err(
        "scenario s\nexpect legacy =\n",
        2,
        16,
        "expected outcome after '=', found newline",
    );
    assert_err(
        "scenario s\nexpect legacy = OK,\n",
        2,
        20,
        "expected outcome after ',', found newline",
    );
    assert_err(
        "scenario s\nexpect legacy is OK",
        2,
        15,
        "expected '=', 'includes' or 'excludes' after policy legacy, found identifier \"is\"",
    );
    assert_err(
        "scenario s\nexpect legacy = OK LOST",
        2,
        20,
        "expected end of line after the outcome list, found identifier \"LOST\"",
    );
}

#[test]
fn unknown_character() {
    assert_err(
        "scenario s\nprocess p {\n  load(@buf)\n}",
        3,
        8,
        "unknown character '@'",
    );
    // The first error in source order wins, even when it is a syntax error.
    assert_err(
        "scenario s\nprocess p { f( }\n@",
        2,
        16,
        "expected argument or ')'",
    );
}

#[test]
fn missing_close_brace_before_next_item() {
    assert_err(
        "scenario s\nprocess p {\n  f()\nprocess q { }",
        4,
        1,
        "expected '}' closing the body of process p opened at 2:11, found identifier \"process\"",
    );
}

#[test]
fn deep_nesting_is_an_error() {
    let src = format!("scenario s\nprocess p {{ f({}1) }}", "(".repeat(100_000));
    assert_err(&src, 2, 79, "nested too deeply");
}

#[test]
fn error_trait_and_display() {
    let e: Box<dyn std::error::Error> = Box::new(err("scenario s\n@"));
    assert_eq!(e.to_string(), "t.scn:2:1: unknown character '@'");
}

/// Expressions print back in a form that parses to the same tree.
#[test]
fn display_round_trips() {
    let src = "scenario s\nprocess p { f(a + (b + c), (a + b) * c, (A|B) + 1, x.y * 2 * (3 * 4), '\\\\', \"q\\\"\") }";
    let f = parse("t.scn", src).unwrap();
    let printed: Vec<_> = f.actors[0].body[0]
        .args
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        printed,
        [
            "a + (b + c)",
            "(a + b) * c",
            "(A|B) + 1",
            "x.y * 2 * (3 * 4)",
            "'\\\\'",
            "\"q\\\"\""
        ]
    );
    let again = format!("scenario s\nprocess p {{ f({}) }}", printed.join(", "));
    let g = parse("t.scn", &again).unwrap();
    let strip = |e: &Expr| e.to_string();
    let a: Vec<_> = f.actors[0].body[0].args.iter().map(strip).collect();
    let b: Vec<_> = g.actors[0].body[0].args.iter().map(strip).collect();
    assert_eq!(a, b);
}

/// A random mutation of the example: delete, insert or replace a few characters.
fn mutated_example() -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        0usize..4,
        any::<char>(),
        0u8..3,
    );
    prop::collection::vec(edit, 1..8).prop_map(|edits| {
        let mut chars: Vec<char> = EXAMPLE.chars().collect();
        for (at, len, c, op) in edits {
            let i = at.index(chars.len() + 1);
            let j = (i + len).min(chars.len());
            match op {
                0 => {
                    chars.drain(i..j);
                }
                1 => chars.insert(i, c),
                _ => {
                    chars.splice(i..j, [c]);
                }
            }
        }
        chars.into_iter().collect()
    })
}

/// Random text built from the language's own tokens, so the parser gets deep.
fn token_soup() -> impl Strategy<Value = String> {
    let tok = prop::sample::select(vec![
        "scenario",
        "s",
        "title",
        "cite",
        "setup",
        "process",
        "child",
        "of",
        "peer",
        "kthread",
        "expect",
        "includes",
        "excludes",
        "=",
        "{",
        "}",
        "(",
        ")",
        ",",
        "|",
        "+",
        "*",
        ".",
        ";",
        "\n",
        " ",
        "4K",
        "0x",
        "99999999999999999999",
        "'P'",
        "'",
        "\"x\"",
        "\"",
        "a-b",
        "p",
        "ERR",
        "#",
        "true",
        "@",
        "\t",
        "é",
    ]);
    prop::collection::vec(tok, 0..80).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn random_strings_never_panic(src in ".{0,200}") {
        let _ = parse("p.scn", &src);
    }

    #[test]
    fn mutations_of_the_example_never_panic(src in mutated_example()) {
        if let Err(e) = parse("p.scn", &src) {
            prop_assert!(e.line >= 1 && e.col >= 1);
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn token_soup_never_panics(src in token_soup()) {
        let _ = parse("p.scn", &src);
    }
}

#[test]
fn long_operator_chains_are_bounded() {
    let src = format!("scenario s\nprocess p {{ f(1{}) }}", " + 1".repeat(100_000));
    let e = err(&src);
    assert!(e.message.contains("too long"), "{e}");
}

#[test]
fn a_thread_may_fork_but_not_create_threads() {
    let ok = "scenario s\nprocess p {\n  pthread_create(t)\n}\nthread t of p {\n  fork(c)\n}\nchild c of t {\n}\n";
    let scn = pinlab_scenario::load("s.scn", ok).expect("a thread forks");
    assert!(matches!(
        scn.actors[2].kind,
        pinlab_scenario::bind::Kind::Child { thread: false, .. }
    ));
    assert_err(
        "scenario s\nprocess p {\n  pthread_create(t)\n}\nthread t of p {\n  pthread_create(u)\n}\nthread u of t {\n}\n",
        8,
        13,
        "only a process or child can create threads (a thread's threads belong to its process: `thread u of p`)",
    );
}
