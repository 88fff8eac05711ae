"""Train with namestudio's defaults, headless through the CLI or inside the running TUI, and print one JSON line:
the names/s of the Trainer's Step events over `seconds` (the first event, with the warm-up, left out) and, in the
TUI, the key-press-to-screen latencies measured while it trains.

Run by tui.py as ``python -m namestudio.tui.bench.train_probe MODE DATA CHECKPOINTS SECONDS PRESSES THREADS``.
Interim: it still trains inside the app's process and wraps the Trainer; it goes when the TUI follows runs that
`namestudio train` children write."""
import asyncio, importlib, json, random, statistics, sys, time

mode, data, checkpoints, seconds, presses, threads = sys.argv[1:7]  # noqa: E402
seconds, presses = float(seconds), int(presses)
train_module = importlib.import_module("namestudio.engine.train")
events = importlib.import_module("namestudio.engine.events")
state = {"first": None, "rates": [], "measured": False, "trainer": None}
OVERRIDES = {"epochs": 1000, "patience": 0}   # run on for as long as it is measured; no effect on speed


class Recording(train_module.Trainer):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        forward, state["trainer"] = self.on_event, self

        def on_event(e):
            if isinstance(e, events.Step) and not state["measured"]:
                now = time.perf_counter()
                if state["first"] is None:
                    state["first"] = now
                else:
                    state["rates"].append(e.names_per_s)
                    if now - state["first"] >= seconds:
                        state["measured"] = True
                        if mode != "tui":
                            self.cancel()
            forward(e)
        self.on_event = on_event


train_module.Trainer = Recording


async def wait_until(condition, timeout, app=None):
    start = time.perf_counter()
    while not condition():
        if getattr(app, "_exception", None) is not None:
            raise RuntimeError(f"the app failed: {app._exception!r}")
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the TUI did not get there in time")
        await asyncio.sleep(0.005)


async def tui():
    app_module = importlib.import_module("namestudio.tui.app")
    textual_events = importlib.import_module("textual.events")
    app = app_module.NameStudioApp(data=data, checkpoints=checkpoints)
    app.train_overrides = {**OVERRIDES, **({"threads": int(threads)} if threads != "0" else {})}
    watch = {"done": None, "at": None}   # done(): has the screen caught up with the key?
    show = app._display

    def display(screen, update):
        show(screen, update)
        if update is not None:
            update.render_segments(app.console)  # headless skips this; a terminal would pay it
            if watch["done"] is not None and watch["at"] is None and watch["done"]():
                watch["at"] = time.perf_counter()

    app._display = display
    latencies = state["latencies"] = {"pane": [], "plot": []}

    def press(key):
        """Post the key event as the terminal driver does. (Pilot.press would then also wait for animations and
        for every widget to go idle, seconds while training streams updates; that wait is no part of the figure.)"""
        app.post_message(textual_events.Key(key, key))

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(lambda: app.dataset is not None, 300, app)
        await pilot.press("2")
        await pilot.press("s")
        await wait_until(lambda: state["measured"], seconds + 300, app)
        train_pane = app.pane("train")
        for k in range(presses):
            # in turn: 3 shows the Evaluate pane, 2 the Train pane again, l redraws its loss plot in log10 (or back);
            # each is timed from the key to the first frame that shows its effect
            key = "32l"[k % 3]
            if key == "l":
                want = not train_pane.log_scale
                kind, done = "plot", (lambda: train_pane.log_scale == want)
            else:
                pane = app.pane("evaluate" if key == "3" else "train")
                kind, done = "pane", (lambda: pane.region.area > 0)
            watch["done"], watch["at"] = done, None
            start = time.perf_counter()
            press(key)
            await wait_until(lambda: watch["at"] is not None, 30, app)
            latencies[kind].append(1000 * (watch["at"] - start))
            watch["done"] = None
            await asyncio.sleep(random.uniform(0.05, 0.25))
        state["trainer"].cancel()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()   # the runs list it refreshes after a run


if mode == "tui":
    try:
        asyncio.run(tui())
    except Exception:  # an error while the app shuts down must not lose what was measured
        if sum(map(len, state.get("latencies", {}).values())) < presses:
            raise
        import traceback
        traceback.print_exc()
    latencies = state["latencies"]
else:
    cli = importlib.import_module("namestudio.tui.cli")
    argv = ["train", "--data", data, "--checkpoints", checkpoints, "--epochs", str(OVERRIDES["epochs"]),
            "--patience", str(OVERRIDES["patience"])]
    code = cli.main(argv + (["--threads", threads] if threads != "0" else []))
    latencies = {"pane": [], "plot": []}
    if code:
        sys.exit(code)
print(json.dumps({"mode": mode, "names_per_s": statistics.median(state["rates"]) if state["rates"] else None,
                  "windows": len(state["rates"]), "latencies_ms": latencies}))
