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


def fake_rows() -> list[dict]:
    """Newest first, as list_runs gives them: the newest classifier was stopped (better, but not finished)."""
    def row(n, task, state, **m):
        return {"run": f"2026010{n}-{task}", "path": f"/runs/{n}", "task": task, "model": "lstm", "state": state,
                "status": "finished", **m}
    return [row(6, "classify", "cancelled", test_accuracy=0.95), row(5, "generate", "cancelled", test_nll=1.0),
            row(4, "classify", "done", test_accuracy=0.60), row(3, "generate", "done", test_nll=2.5),
            row(2, "classify", "done", test_accuracy=0.80), row(1, "generate", "done", test_nll=2.0)]


async def test_selectors_start_on_the_best_finished_run_of_their_task(fixture_app):
    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        chosen = {}
        clf, gen = app.pane("classify"), app.pane("generate")
        clf.load_run = lambda path, quiet=False: chosen.__setitem__("classify", path)
        gen.load_run = lambda path, quiet=False: chosen.__setitem__("generate", path)
        gen.load_classifier = lambda path, quiet=False: chosen.__setitem__("check with", path)
        clf.set_runs(fake_rows())
        gen.set_runs(fake_rows())
        assert chosen == {"classify": "/runs/2", "generate": "/runs/1", "check with": "/runs/2"}


async def test_a_late_tab_activation_does_not_undo_a_pane_key(fixture_app):
    """The tab bar's activation of the first pane can be handled late, behind start-up work, after the user
    pressed 2: its handler must not focus the Data pane then (Textual's TabbedContent shows the pane that holds
    the focused widget, so the screen went back to Data; the bench saw it in 4 of 6 starts in tmux)."""
    from textual.widgets import TabbedContent

    app = fixture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        await settle(pilot, app)
        tabs = app.query_one("#panes", TabbedContent)
        late = TabbedContent.TabActivated(tabs, tabs.get_tab("data"))
        await app.on_tabbed_content_tab_activated(late)
        await pilot.pause(0.2)
        assert tabs.active == "train"
        assert app.focused is not None and app.pane("train") in app.focused.ancestors


async def test_a_long_error_line_wraps_in_the_train_log_instead_of_running_off_the_edge(fixture_app):
    from textual.widgets import Log

    from namestudio.engine.events import Failed

    app = fixture_app
    words = [f"word{i:02d}" for i in range(40)]          # 279 characters, 3.5 screen widths at 80 columns
    async with app.run_test(size=(80, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        pane = app.pane("train")
        await wait_for(pilot, lambda: pane.built, 10)
        pane._failed(Failed(" ".join(words) + "\nlast log line"))
        await pilot.pause(0.2)
        lines = [line for line in app.query_one("#eval-log", Log).lines if line.strip()]
        assert lines[0].startswith("failed: word00") and len(lines) >= 5
        assert all(len(line) <= 76 for line in lines)
        assert " ".join(" ".join(lines).split()) == "failed: " + " ".join(words) + " last log line"   # nothing lost
