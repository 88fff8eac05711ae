"""Run by tests/test_tui.py in its own process group (as a terminal's session): the TUI starts a long run, prints
"PID RUN_DIR", then waits to be hung up. Not a test module (its name does not start with test_)."""
import asyncio
import os
import signal

from test_tui import FAST, make_app, set_form, settle, wait_for


async def main() -> None:
    app = make_app(data="names")
    app.train_overrides = {"patience": 0, "log_every": 1}
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        await set_form(app, {**FAST, "f-epochs": "2000"})
        await pilot.press("s")
        await wait_for(pilot, lambda: app.follower.children, 30)
        launched = app.follower.children[0]
        os.write(1, f"{launched.pid} {launched.run_dir}\n".encode())
        await asyncio.sleep(300)


if __name__ == "__main__":
    # as a terminal's session has it, whatever the test runner inherited (under nohup, SIGHUP is ignored)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    asyncio.run(main())
