"""loadtest/sessionbench.py: the in-memory driver answers what it is sent, and costs come out positive."""

from __future__ import annotations

from loadtest.micro import sessionbench


def test_drive_answers_each_protocol_and_costs_are_measured():
    s = sessionbench._session()
    out = sessionbench.drive(s, sessionbench.H1_REQUEST * 2)  # pipelined: both answered, in order
    assert out.count(b"HTTP/1.1 200 OK\r\n") == 2 and out.endswith(b"Hello, World!")
    s = sessionbench._session()
    reads = sessionbench.h2_reads(400)
    sessionbench.drive(s, reads[0])
    for data in reads[1:]:  # 6,400 responses: more than one connection window's worth
        assert sessionbench.drive(s, data).count(b"Hello, World!") == sessionbench.STREAMS
    assert sessionbench.h1_cost(50) > 0 and sessionbench.h2_cost(64) > 0


def test_instruction_counts_come_from_cachegrinds_summary():
    out = "==12== Command: python3 -m loadtest.sessionbench --serve h1 320\n==12== \n==12== I   refs:      1,234,567\n"
    assert sessionbench.i_refs(out) == 1234567
    import pytest

    with pytest.raises(ValueError):
        sessionbench.i_refs("valgrind: command not found")


def test_a_counted_run_serves_what_it_is_asked(capsys):
    # what valgrind runs under --instructions: both protocols, no output, exit status 0
    assert sessionbench.main(["--serve", "h1", "40"]) == 0
    assert sessionbench.main(["--serve", "h2", "40"]) == 0
    assert capsys.readouterr().out == ""
