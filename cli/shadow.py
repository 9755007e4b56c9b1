"""`tagger shadow`: try a candidate version on live traffic through a running server's model control API.

    tagger shadow load MODEL      the export under <models>/.shadows/ runs beside the version serving
    tagger shadow status MODEL    how it agrees with the serving version (tags, spans by label, confidence, latency)
    tagger shadow promote MODEL   it becomes the serving version (the repository's swap: nothing lost)
    tagger shadow discard MODEL   it stops

The server is --url (default http://127.0.0.1:8000); the control token is --token or TAGGER_CONTROL_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

ACTIONS = {"load": ("POST", "shadow/load"), "status": ("GET", "shadow"), "promote": ("POST", "shadow/promote")}
ACTIONS["discard"] = ("POST", "shadow/discard")


def add_shadow_command(sub: Any) -> None:
    """The `shadow` subcommand, on the `tagger` parser's subparsers."""
    sh = sub.add_parser("shadow", help="load, watch, promote or discard a shadow version on a running server")
    sh.add_argument("action", choices=sorted(ACTIONS))
    sh.add_argument("model", help="the served model the shadow is a candidate for")
    sh.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default http://127.0.0.1:8000)")
    sh.add_argument("--token", help="the control token (default: TAGGER_CONTROL_TOKEN)")
    sh.set_defaults(func=cmd_shadow)


def cmd_shadow(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("TAGGER_CONTROL_TOKEN")
    if not token:
        raise ValueError("the control token is needed: --token, or TAGGER_CONTROL_TOKEN")
    method, path = ACTIONS[args.action]
    url = f"{args.url.rstrip('/')}/v2/repository/models/{args.model}/{path}"
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            print(json.dumps(json.loads(response.read()), indent=1, ensure_ascii=False))
            return 0
    except urllib.error.HTTPError as err:
        print(f"tagger shadow {args.action}: {err.code}: {json.loads(err.read()).get('error')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as err:
        print(f"tagger shadow {args.action}: cannot reach {args.url}: {err.reason}", file=sys.stderr)
        return 1
