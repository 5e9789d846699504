"""Validate a checkpoint folder, then push it to the Hugging Face Hub (private unless --public).

    python hub_upload.py CHECKPOINT_DIR REPO_ID [--public] [--dry-run] [--revision BRANCH]
                         [--commit-message MSG] [--skip-reload-check] [--probe-text TEXT]
                         [--export-to NEW_DIR]

Before anything leaves the machine the folder is checked (allowlist, auto_map and code files,
safetensors weights, tokenizer, model card; no pickles, training state or data) and reloaded with
trust_remote_code in a clean process without mamba_ner, whose predictions on a probe sentence must
match. --dry-run stops there and lists the files that would be sent. A training output folder is
refused as it is (Trainer checkpoints, optimizer state...): --export-to NEW_DIR first copies only the
files that may be uploaded into NEW_DIR, then checks and uploads that. The token comes from HF_TOKEN
or `hf auth login` and is never printed. The logic lives in `mamba_ner.hub`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mamba_ner.hub import (
    DEFAULT_PROBE_TEXT,
    CheckpointValidationError,
    HubUploadError,
    export_checkpoint,
    prepare_upload,
    push_checkpoint,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "checkpoint_dir", metavar="CHECKPOINT_DIR", help="folder written by save_pretrained, with README.md"
    )
    parser.add_argument("repo_id", metavar="REPO_ID", help="Hub repository, e.g. your-name/mamba-crf-cmeee")
    parser.add_argument("--public", action="store_true", help="create the repository public (default: private)")
    parser.add_argument("--dry-run", action="store_true", help="validate and reload-check only; list the files")
    parser.add_argument("--revision", metavar="BRANCH", help="branch to push to (created when missing)")
    parser.add_argument("--commit-message", metavar="MSG", help="commit message on the Hub")
    parser.add_argument("--skip-reload-check", action="store_true", help="skip the clean-process reload check")
    parser.add_argument("--probe-text", default=DEFAULT_PROBE_TEXT, help="sentence tagged by the reload check")
    parser.add_argument(
        "--export-to", metavar="NEW_DIR", help="copy the uploadable files into NEW_DIR first, then upload NEW_DIR"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    folder = args.checkpoint_dir
    try:
        if args.export_to:
            export_checkpoint(folder, args.export_to)
            folder = args.export_to
        validation = prepare_upload(folder, check_reload=not args.skip_reload_check, probe_text=args.probe_text)
    except (CheckpointValidationError, HubUploadError, FileExistsError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1

    print(f"{len(validation.files)} files validated in {validation.path}:")
    for name in validation.files:
        print(f"  {name}  ({(validation.path / name).stat().st_size:,} bytes)")
    visibility = "public" if args.public else "private"
    target = f"{visibility} repository {args.repo_id}" + (f", branch {args.revision}" if args.revision else "")
    if args.dry_run:
        print(f"dry run: nothing was uploaded; these files would go to the {target}")
        return 0

    try:
        url = push_checkpoint(
            validation, args.repo_id, private=not args.public, revision=args.revision,
            commit_message=args.commit_message,
        )
    except (CheckpointValidationError, HubUploadError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    print(f"uploaded to the {target}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
