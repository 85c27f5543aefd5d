from tryouts.providers.sse import SSEDecoder


def feed_all(parts):
    d = SSEDecoder()
    out = []
    for p in parts:
        out.extend(d.feed(p))
    return out


def test_events_split_anywhere_give_the_same_result():
    raw = b'data: {"a":1}\n\n: keep-alive comment\n\nevent: ping\ndata: x\n\ndata: [DONE]\n\n'
    whole = [(e.event, e.data) for e in feed_all([raw])]
    assert whole == [("message", '{"a":1}'), ("ping", "x"), ("message", "[DONE]")]
    for cut in range(1, len(raw)):
        assert [(e.event, e.data) for e in feed_all([raw[:cut], raw[cut:]])] == whole
    assert [(e.event, e.data) for e in feed_all([bytes([b]) for b in raw])] == whole


def test_crlf_and_cr_line_endings_and_split_crlf():
    raw = b"data: one\r\n\r\ndata: two\r\rdata: three\n\n"
    expected = ["one", "two", "three"]
    assert [e.data for e in feed_all([raw])] == expected
    for cut in range(1, len(raw)):
        assert [e.data for e in feed_all([raw[:cut], raw[cut:]])] == expected


def test_multiline_data_id_and_field_without_space():
    evs = feed_all([b"id: 7\ndata:first\ndata: second\n\n"])
    assert len(evs) == 1
    assert evs[0].data == "first\nsecond"
    assert evs[0].id == "7"


def test_comment_only_and_blank_lines_dispatch_nothing():
    assert feed_all([b": hello\n\n\n\n"]) == []


def test_incomplete_event_is_not_dispatched():
    assert feed_all([b"data: partial\n"]) == []


def test_events_are_stamped_in_order():
    evs = feed_all([b"data: a\n\n", b"data: b\n\n"])
    assert 0 < evs[0].t_ns <= evs[1].t_ns


def test_utf8_split_across_chunks():
    raw = "data: héllo €\n\n".encode()
    cut = raw.index("€".encode()) + 1
    assert [e.data for e in feed_all([raw[:cut], raw[cut:]])] == ["héllo €"]
