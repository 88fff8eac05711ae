"""What a new user trips over (issue 12): Pilot tests of the TUI's fixes."""
from __future__ import annotations

from textual.command import CommandList, CommandPalette

from test_tui import SIZE, fixture_app, settle, wait_for  # noqa: F401  (fixture_app is a fixture)


def palette_titles(app) -> list[str]:
    hits = app.screen.query_one(CommandList)
    return [str(hits.get_option_at_index(i).prompt).splitlines()[0].strip() for i in range(hits.option_count)]


async def test_the_palette_lists_one_quit_theme_keys_and_screenshot(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        for word in ("quit", "theme", "keys", "screenshot"):
            await pilot.press("ctrl+p", *word)
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette)
                           and app.screen.query_one(CommandList).option_count > 0, 10)
            await pilot.pause(0.3)
            titles = palette_titles(app)
            same = [t for t in titles if t.lower() in (word, "svg") or t.lower().startswith(word + " ")]
            assert len(same) == 1, (word, titles)
            await pilot.press("escape")


async def test_a_bad_path_keeps_the_focus_in_the_field_with_its_text_selected(fixture_app):
    from textual.widgets import Input

    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = app.pane("data")
        source = pane.source
        await pilot.press("1", "o", *"/nope", "enter")
        await settle(pilot, app)
        assert "Could not load" in str(app.query_one("#data-status").render())
        field = app.query_one("#data-path", Input)
        assert app.focused is field
        assert field.selected_text == "/nope"
        await pilot.press(*"pbo")              # typed over the selection: no download, no switch of source
        await settle(pilot, app)
        assert field.value == "pbo" and app.focused is field
        assert not pane.downloading and pane.source == source
        field.value = ""
        await pilot.press(*"names", "enter")   # a good path loads, and the focus leaves the field
        await settle(pilot, app)
        assert "typed by you" in str(app.query_one("#data-status").render()) and app.focused is not field

