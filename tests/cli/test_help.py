"""`megaspec --help` lists each command with its first sentence whole (click cut them at ~45
characters with `...`, and `explain`'s at its `e.g.`)."""

from __future__ import annotations

from click.testing import CliRunner

from megaspec.compiler.cli import COMMAND_MODULES, cli, first_sentence


def test_help_lists_every_command_with_its_whole_first_sentence():
    out = CliRunner().invoke(cli, ["--help"], terminal_width=80).output
    listing = " ".join(out.split("Commands:", 1)[1].split())
    for name in COMMAND_MODULES:
        sentence = first_sentence(cli.get_command(None, name).help)
        assert f"{name} {sentence}" in listing.replace("- ", "-"), name
    assert "e.g. `megaspec explain MS101`." in listing


def test_a_first_sentence_runs_past_abbreviations_and_an_ellipsis():
    assert first_sentence("Print a code, e.g. `MS101`. More.") == "Print a code, e.g. `MS101`."
    assert first_sentence("Lint SPEC... (files) into apps.\n\nDetails.") == "Lint SPEC... (files) into apps."
    assert first_sentence("No period") == "No period"
