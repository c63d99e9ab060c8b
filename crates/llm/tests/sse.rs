#![allow(clippy::unwrap_used)] // tests may unwrap (project rule)

use gatehouse_llm::sse::{Event, Parser};

fn ev(event: Option<&str>, data: &str) -> Event {
    Event {
        event: event.map(str::to_owned),
        data: data.to_owned(),
        id: None,
    }
}

fn parse_in_pieces(input: &[u8], size: usize) -> Vec<Event> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for piece in input.chunks(size) {
        out.extend(p.push(piece));
    }
    out.extend(p.finish());
    out
}

#[test]
fn every_split_gives_the_same_events() {
    let input = "\u{feff}: keep-alive\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\n\
                 event: b\rdata: x\r\rdata: {\"k\": \"é\"}\n\ndata\n\n";
    let expected = vec![
        ev(Some("a"), "one\ntwo"),
        ev(Some("b"), "x"),
        ev(None, "{\"k\": \"é\"}"),
        ev(None, ""),
    ];
    for size in 1..=input.len() {
        assert_eq!(
            parse_in_pieces(input.as_bytes(), size),
            expected,
            "piece size {size}"
        );
    }
}

#[test]
fn cr_at_chunk_end_waits_for_possible_lf() {
    let mut p = Parser::new();
    assert!(p.push(b"data: a\r").is_empty());
    // The `\n` completes `\r\n` (one line end), so no blank line yet.
    assert!(p.push(b"\n").is_empty());
    assert_eq!(p.push(b"\r\n"), vec![ev(None, "a")]);
}

#[test]
fn event_without_data_is_discarded_and_type_resets() {
    let events = parse_in_pieces(b"event: ping\n\ndata: x\n\n", 64);
    assert_eq!(events, vec![ev(None, "x")]);
}

#[test]
fn unterminated_last_event_is_flushed_by_finish() {
    let mut p = Parser::new();
    assert!(p.push(b"event: e\ndata: tail").is_empty());
    assert_eq!(p.finish(), Some(ev(Some("e"), "tail")));
    assert_eq!(p.finish(), None);
}

#[test]
fn id_is_kept_across_events() {
    let events = parse_in_pieces(b"id: 7\ndata: a\n\ndata: b\n\n", 3);
    assert_eq!(events[0].id.as_deref(), Some("7"));
    assert_eq!(events[1].id.as_deref(), Some("7"));
}

#[test]
fn encode_round_trips_through_the_parser() {
    let mut out = Vec::new();
    gatehouse_llm::sse::encode(Some("message_start"), "{\"a\":1}", &mut out);
    gatehouse_llm::sse::encode(None, "two\nlines", &mut out);
    assert_eq!(
        out,
        b"event: message_start\ndata: {\"a\":1}\n\ndata: two\ndata: lines\n\n".to_vec()
    );
    let events = parse_in_pieces(&out, 5);
    assert_eq!(
        events,
        vec![
            ev(Some("message_start"), "{\"a\":1}"),
            ev(None, "two\nlines")
        ]
    );
}
