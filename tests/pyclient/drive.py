"""Drives a Python client that openapi-python-client generated from a real `jetvault
serve`'s /openapi.json, as an API consumer would: backup, list, release, a conditional
GET of the released configuration (ETag, then 304), a restore dry run, and the verify,
prune-plan and events routes. Every call goes through the generated code (its models
parse every answer); any surprise exits non-zero with what differed.

Run by tests/it/pyclient.rs with the generated package on PYTHONPATH and
JV_BASE (http://127.0.0.1:PORT), JV_TOKEN (an operate token), JV_APP, JV_ENV and
JV_LIVE (the environment's live file) in the environment.
"""

import json
import os
import sys

from jetvault_client import AuthenticatedClient
from jetvault_client.api.releases import create_release, get_release, get_release_config
from jetvault_client.api.restore import restore
from jetvault_client.api.snapshots import backup, list_events, list_snapshots, plan_prune, verify_env
from jetvault_client.models import (
    BackupOutcomeCreated,
    BackupOutcomeUnchanged,
    PruneBody,
    PruneReport,
    Release,
    ReleaseBody,
    RestoreBody,
    RestorePlan,
    RetentionPolicy,
    SnapshotPage,
    VerifyBody,
    VerifyReport,
)

APP, ENV = os.environ["JV_APP"], os.environ["JV_ENV"]


def check(ok, what, response=None):
    if not ok:
        extra = ""
        if response is not None:
            extra = f" (HTTP {response.status_code}: {response.content[:400]!r})"
        print(f"pyclient: FAILED: {what}{extra}", file=sys.stderr)
        sys.exit(1)


def main():
    client = AuthenticatedClient(
        base_url=os.environ["JV_BASE"],
        token=os.environ["JV_TOKEN"],
        raise_on_unexpected_status=True,
    )
    with open(os.environ["JV_LIVE"], encoding="utf-8") as f:
        live = json.load(f)

    # Backup from the live target: 201 and a created snapshot; again: 200, unchanged.
    r = backup.sync_detailed(APP, ENV, client=client)
    check(r.status_code == 201, "backup answers 201", r)
    check(isinstance(r.parsed, BackupOutcomeCreated), f"backup parses as created: {r.parsed!r}", r)
    version = r.parsed.version
    r = backup.sync_detailed(APP, ENV, client=client)
    check(r.status_code == 200, "a second backup answers 200", r)
    check(isinstance(r.parsed, BackupOutcomeUnchanged), f"unchanged: {r.parsed!r}", r)
    check(r.parsed.version == version, "the unchanged snapshot is the one just taken", r)

    # List: the snapshot is there, newest first.
    r = list_snapshots.sync_detailed(APP, ENV, client=client, limit=10)
    check(r.status_code == 200 and isinstance(r.parsed, SnapshotPage), "list_snapshots", r)
    versions = [s.version for s in r.parsed.snapshots]
    check(versions and versions[0] == version, f"v{version} first in {versions}", r)

    # Release it.
    r = create_release.sync_detailed(
        APP, ENV, client=client, body=ReleaseBody(version=version, label="py-1.0.0", notes="pyclient")
    )
    check(r.status_code == 201 and isinstance(r.parsed, Release), "create_release answers 201", r)
    check(r.parsed.version == version and r.parsed.label == "py-1.0.0", f"released: {r.parsed!r}", r)
    pointer_etag = r.headers.get("etag")
    check(bool(pointer_etag), "the release has an ETag", r)

    # The released configuration: 200 with the live content and an ETag, then 304.
    r = get_release_config.sync_detailed(APP, ENV, client=client)
    check(r.status_code == 200, "get_release_config answers 200", r)
    check(r.parsed == live, "the released configuration is what was live", r)
    etag = r.headers.get("etag")
    check(bool(etag), "the configuration has an ETag", r)
    r = get_release_config.sync_detailed(APP, ENV, client=client, if_none_match=etag)
    check(r.status_code == 304, "If-None-Match with the ETag answers 304", r)
    check(r.headers.get("etag") == etag, "the 304 repeats the ETag", r)
    r = get_release.sync_detailed(APP, ENV, client=client, if_none_match=pointer_etag)
    check(r.status_code == 304, "the pointer's ETag answers 304 too", r)

    # Restore dry run: the plan, nothing pushed (live already holds it).
    r = restore.sync_detailed(APP, ENV, client=client, body=RestoreBody(source=version, dry_run=True))
    check(r.status_code == 200 and isinstance(r.parsed, RestorePlan), f"restore plan: {r.parsed!r}", r)
    check(r.parsed.snapshot.version == version, "the plan names the snapshot", r)
    check(r.parsed.already_live, "the plan sees live already holds it", r)

    # Verify a sample, plan a prune, page the events.
    r = verify_env.sync_detailed(APP, ENV, client=client, body=VerifyBody(sample=5))
    check(r.status_code == 200 and isinstance(r.parsed, VerifyReport), "verify_env", r)
    check(r.parsed.checked >= 1 and not r.parsed.bad and r.parsed.ok == r.parsed.checked, "all good", r)
    body = PruneBody(retention=RetentionPolicy(keep_last=1))
    r = plan_prune.sync_detailed(APP, ENV, client=client, body=body)
    check(r.status_code == 200 and isinstance(r.parsed, PruneReport), "plan_prune", r)
    check(r.parsed.dry_run and r.parsed.deleted == 0, "nothing to delete: v1 is latest and released", r)
    r = list_events.sync_detailed(APP, ENV, client=client, limit=1)
    check(r.status_code == 200 and len(r.parsed) == 1, "list_events limit=1", r)
    check('rel="next"' in r.headers.get("link", ""), "the first page of events links the next", r)
    check(r.parsed[0].action.value == "release", f"newest event: {r.parsed[0].action}", r)
    print("pyclient: backup, list, release, conditional GET, restore dry run, verify, prune plan, events: ok")


if __name__ == "__main__":
    main()
