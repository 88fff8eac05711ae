"""Every key binding of the TUI, in one place.

Each binding has an id, a short description (shown in the footer) and a tooltip
(the help text shown by the keys screen, F1). Pane bindings are active while
the focus is inside that pane; pane-switch keys work everywhere except inside
a field: a number or path field types the digit, and a name field refuses it
with a word (a digit that switched panes from a name field let the letters typed
after it run the new pane's keys: "Louis2s" started a training run).

Letter keys are bound with ``priority=True`` so that they also work while a
number field has the focus: a :class:`~namestudio.tui.widgets.Field` only
claims the characters it accepts, and Textual drops a priority binding whose
key the focused field would consume. So ``s`` starts training from inside the
epochs field, but typing ``s`` into the data path field types an ``s``.
"""
from __future__ import annotations

from textual.binding import Binding

PANES = [
    ("data", "Data", "1"),
    ("train", "Train", "2"),
    ("evaluate", "Evaluate", "3"),
    ("classify", "Classify", "4"),
    ("generate", "Generate", "5"),
    ("runs", "Runs", "6"),
    ("compare", "Compare", "7"),
]

_PANE_GROUP = Binding.Group("Panes", compact=True)


def _key(key: str, action: str, description: str, tooltip: str, *, id: str, show: bool = True,
         priority: bool = True, group: Binding.Group | None = None) -> Binding:
    return Binding(key, action, description, show=show, priority=priority, tooltip=tooltip,
                   id=f"namestudio.{id}", group=group)


APP = [
    _key("f1", "app.help", "Keys", "List every key with its help text (F1 or ? again closes it).", id="help"),
    _key("question_mark", "app.help", "Keys", "List every key with its help text.", id="help2", show=False),
    _key("ctrl+p", "app.command_palette", "Palette", "Search every action by name (the command palette).",
         id="palette"),
    _key("ctrl+s", "app.screenshot", "SVG", "Save an SVG screenshot of the screen into the folder of the "
         "active or loaded run (else the checkpoints folder).", id="screenshot"),
    _key("ctrl+t", "app.toggle_theme", "Theme", "Switch between the dark and the light theme.", id="theme"),
    _key("escape", "app.leave_field", "Leave field", "Leave the text field so that the pane's letter keys work "
         "(Tab also moves on).", id="leave"),
    _key("ctrl+q", "app.quit", "Quit", "Quit; with a run started here still training, asks whether to stop it (best kept, "
         "tested) or leave it running.",
         id="quit"),
    *(_key(k, f"app.pane('{pid}')", title, f"Show the {title} pane.", id=f"pane.{pid}", group=_PANE_GROUP)
      for pid, title, k in PANES),
]

DATA = [
    _key("b", "use_builtin", "Built-in", "Use the built-in offline dataset (surnames by language, from Faker).",
         id="data.builtin"),
    _key("p", "use_pytorch", "PyTorch names", "Use the PyTorch tutorial names dataset; it is downloaded "
         "(checksum verified, with a progress bar) when it is not on disk.", id="data.pytorch"),
    _key("o", "open_path", "Open path", "Type a folder of <Label>.txt, a name,label .csv or a one-list .txt, "
         "then press Enter.", id="data.path"),
    _key("r", "reload", "Reload", "Load the active source again (e.g. after editing its files).", id="data.reload"),
]

TRAIN = [
    _key("s", "start", "Start", "Start training with the form's settings on the active data source.",
         id="train.start"),
    _key("p", "pause", "Pause", "Pause the attached run after its current batch, or resume it.", id="train.pause"),
    _key("x", "stop", "Stop", "Stop the run within one batch; its best checkpoint so far (or, before one, its weights) is kept and tested.",
         id="train.stop"),
    _key("a", "attach_next", "Attach", "Follow the next live run (started here or anywhere else: another "
         "terminal, tmux, SSH); the Runs pane's w attaches the run under its cursor.", id="train.attach"),
    _key("l", "log_scale", "Log y", "Show the loss plot as log10(loss), or linear again.", id="train.log"),
    _key("m", "smoothing", "Smooth", "Cycle the smoothing of the plotted lines: none, 0.6, 0.8, 0.9, 0.95 (an "
         "exponential moving average, debiased at the start as TensorBoard's; the raw line stays faint behind).",
         id="train.smooth"),
    _key("t", "x_axis", "x-axis", "Cycle the plots' x-axis: epoch, step, training time (seconds).",
         id="train.xaxis"),
]

EVALUATE = [
    _key("c", "toggle_counts", "Counts/%", "Show the confusion matrix as counts or as row percentages.",
         id="eval.counts"),
    _key("l", "follow_live", "Live", "Follow the attached run (Train pane): update at each evaluation.",
         id="eval.live"),
    _key("o", "choose_run", "Open run", "Choose a saved classifier run to show (its test split).", id="eval.open"),
    _key("r", "toggle_view", "Reliability", "Switch between the confusion matrix and the reliability diagram: "
         "accuracy against confidence per confidence bin (a calibrated model lies on the diagonal), with the "
         "expected calibration error (ECE) before and after temperature scaling.", id="eval.reliability"),
    _key("d", "other_source", "Other data", "Test the shown run on another labelled source: type builtin, "
         "pytorch-names or a path (a folder of <Label>.txt, a name,label .csv), then Enter. Labels the run does not know "
         "are skipped and listed; names in its training split are counted.", id="eval.data"),
    _key("x", "toggle_exclude", "Excl. train", "On another source: leave out the names that are in the run's "
         "training split (or count them again), and test again.", id="eval.exclude"),
    _key("t", "own_split", "Test split", "Back from another source to the run's own test split.", id="eval.own"),
]

CLASSIFY = [
    _key("up", "more", "More", "Show one more language (top-k + 1).", id="clf.more"),
    _key("down", "fewer", "Fewer", "Show one language fewer (top-k - 1).", id="clf.fewer"),
    _key("o", "choose_run", "Open run", "Choose another saved classifier run.", id="clf.open"),
    _key("n", "edit_name", "Name", "Back to the name field from elsewhere in the pane (the field has the cursor when "
         "the pane opens, so type straight away there); the prediction updates as you type.", id="clf.name"),
]

GENERATE = [
    _key("ctrl+r", "resample", "Resample", "Sample again with the current settings, from anywhere in the pane "
         "(Enter in a field does too).", id="gen.resample"),
    _key("r", "resample", "Resample", "Sample again (outside the text fields).", id="gen.resample2", show=False),
    _key("o", "choose_run", "Open run", "Choose another saved generator run.", id="gen.open"),
    _key("t", "quality_table", "Temp table", "A table of novelty (share not in the training data), uniqueness and "
         "agreement with the 'Check with' classifier at temperatures 0.5, 0.8, 1.0 and 1.2 (200 names each, with "
         "the language, start and top-k set here). t again hides it; after a change of run, language or "
         "classifier, t computes it again.", id="gen.table"),
]

RUNS = [
    _key("space", "mark", "Mark", "Mark or unmark the run under the cursor: for the overlay plot, and for the "
         "Compare pane (7, u compares the marked runs).", id="runs.mark",
         priority=False),
    _key("w", "watch", "Watch", "Follow this run on the Train pane (its plots fill from its logs, then stream).",
         id="runs.watch"),
    _key("e", "open('evaluate')", "→Evaluate", "Show this classifier run on the Evaluate pane.", id="runs.eval"),
    _key("c", "open('classify')", "→Classify", "Use this classifier run on the Classify pane.", id="runs.clf"),
    _key("g", "open('generate')", "→Generate", "Use this generator run on the Generate pane.", id="runs.gen"),
    _key("s", "resume_run", "Resume", "Train the stopped, stale or failed run under the cursor on from its last "
         "resume point (`namestudio train --resume RUN`, in its own session); the Train pane follows it.",
         id="runs.resume"),
    _key("x", "export", "CSV", "Export the run's evaluations (metrics.jsonl) as metrics.csv in its folder.",
         id="runs.csv"),
    _key("r", "refresh", "Refresh", "Read the checkpoints folder again.", id="runs.refresh"),
]

COMPARE = [
    _key("o", "choose_source", "Open", "Choose what to compare: an experiment (a folder made by `namestudio "
         "compare`) or the runs marked on the Runs pane.", id="cmp.open"),
    _key("u", "use_marked", "Marked", "Compare the runs marked on the Runs pane (6, space marks a run).",
         id="cmp.marked"),
    _key("v", "next_view", "View", "Next view: Curves, Results, Confusion, Top-3, Samples.", id="cmp.view"),
    _key("t", "x_axis", "x-axis", "Curves: cycle the x-axis: epoch, step, training time (seconds).", id="cmp.xaxis"),
    _key("m", "smoothing", "Smooth", "Curves: cycle the smoothing: none, 0.6, 0.8, 0.9, 0.95 (an exponential "
         "moving average, debiased at the start as TensorBoard's; the raw line stays faint behind).",
         id="cmp.smooth"),
    _key("l", "log_scale", "Log y", "Curves: plot log10 of the loss (and of the NLL), or linear again.",
         id="cmp.log"),
    _key("h", "toggle_run", "Hide/show", "Curves and Results: hide the run under the table's cursor from the "
         "plots, or show it again (↑/↓ move the cursor).", id="cmp.hide"),
    _key("s", "sort", "Sort", "Results: sort by the next column (a click on a header sorts by it; again: the "
         "other way).", id="cmp.sort"),
    _key("d", "toggle_difference", "A−B/side", "Confusion: the two runs' matrices side by side, or their "
         "difference (row %, A minus B).", id="cmp.diff"),
    _key("right", "scroll_matrix(4)", "Scroll", "Confusion: scroll the matrices to the right (when wider than the "
         "pane; the line above names the columns past the edge).", id="cmp.right", show=False, priority=False),
    _key("left", "scroll_matrix(-4)", "Scroll", "Confusion: scroll the matrices back to the left.", id="cmp.left",
         show=False, priority=False),
    _key("ctrl+r", "compute", "Compute", "Top-3 and Samples: compute again with the names, temperature and "
         "start letters typed (Enter in a field does too).", id="cmp.compute"),
]

BY_PANE = {"data": DATA, "train": TRAIN, "evaluate": EVALUATE, "classify": CLASSIFY, "generate": GENERATE,
           "runs": RUNS, "compare": COMPARE}

# The footer (tui/widgets.py KeyBar): the focused pane's keys come first, then the app's in this order.
FOOTER_ORDER = ["leave", "help", "palette", "quit", "pane", "screenshot", "theme"]
# Where the line is too narrow (80 columns): these go first ...
FOOTER_SPARE = ["theme", "screenshot"]
# ... then these shorter descriptions are used ...
FOOTER_SHORT = {"leave": "Leave", "data.pytorch": "PyTorch", "data.path": "Path", "runs.eval": "Eval",
                "runs.clf": "Class.", "runs.gen": "Gen.", "eval.open": "Open", "clf.open": "Open",
                "gen.open": "Open", "eval.counts": "%", "train.log": "Log", "eval.reliability": "Reliab.",
                "eval.data": "Data", "eval.exclude": "-train", "eval.own": "Own", "gen.table": "Temps",
                "train.smooth": "EMA", "train.xaxis": "Axis", "cmp.smooth": "EMA", "cmp.xaxis": "Axis", "cmp.log": "Log",
                "cmp.hide": "Hide", "cmp.marked": "Marked", "cmp.diff": "A−B", "cmp.compute": "Run"}
# ... then these go, least needed first: the pane keys' hint, and three keys of panes whose other keys need the
# room (Runs' x CSV and r Refresh, Data's reload; F1 and ^p still list them). Where that is still too long (a form
# field focused adds esc Leave), a pane's last keys go next (KeyBar.fitted): esc, F1, ^p and ^q always stay.
FOOTER_DROP = ["pane", "runs.refresh", "data.reload", "runs.csv"]

# the modal screens
ERROR = [Binding("escape,enter,q", "dismiss", "Close", tooltip="Close this message.", id="namestudio.error.close")]
HELP = [Binding("escape,f1,question_mark,q", "dismiss", "Close", tooltip="Close the keys screen.",
                id="namestudio.help.close")]
QUIT = [Binding("s", "choose('stop')", "Stop it", tooltip="Stop the run (what it trained is kept and tested), then quit.",
                id="namestudio.quit.stop"),
        Binding("l", "choose('leave')", "Leave it", tooltip="Quit and leave the run training (its own process).",
                id="namestudio.quit.leave"),
        Binding("q", "choose('quit')", "Quit", tooltip="Quit (the run has ended meanwhile: nothing to stop or leave).",
                id="namestudio.quit.quit"),
        Binding("escape", "choose('cancel')", "Cancel", tooltip="Do not quit.", id="namestudio.quit.cancel")]
