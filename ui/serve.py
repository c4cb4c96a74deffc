"""Start the app as `.ci/app` does: `python ui/serve.py [streamlit options]`.

Same as `streamlit run ui/app.py`, except that the server imports the engine before it starts
listening and loads the rule catalogue in a thread meanwhile, so the first visitor after a start
does not wait for them (the app's own background load then finds the catalogue ready), and that
Streamlit's forced garbage collection after every run is off (`--runner.postScriptGC=false`, as
`.streamlit/config.toml` sets it for `streamlit run` from the project folder).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import eligibility  # noqa: E402,F401 - the app's imports, done before the first visitor
import eligibility.present  # noqa: E402,F401
import eligibility.questions  # noqa: E402,F401


def _warm() -> None:
    if os.environ.get("ELIGIBILITY_RULES_DIR"):
        return  # the app loads that folder itself (and reports its errors on the page)
    try:
        eligibility.default_rules()
    except Exception:  # noqa: BLE001 - the app loads again and shows the error to the user
        pass


def main() -> None:
    threading.Thread(target=_warm, name="warm-rules", daemon=True).start()
    from streamlit.web import cli

    # no full garbage collection after every script run (runner.postScriptGC): it holds the GIL some
    # 80 ms per answer while the run's last messages wait to be sent; Python's own collector still runs
    # (and no developer toolbar: an owner has no use for "Deploy")
    given = {a.split("=", 1)[0] for a in sys.argv[1:]}
    defaults = [f"{k}={v}" for k, v in (("--runner.postScriptGC", "false"), ("--client.toolbarMode", "minimal"))
                if k not in given]
    sys.argv = ["streamlit", "run", str(ROOT / "ui" / "app.py"), *defaults, *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
