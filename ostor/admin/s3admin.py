"""ostor-s3-admin: manage S3 users, access keys and buckets (seed, "Managing S3 Users").

The user and bucket commands of the seed arrive with the S3 gateway; this
entry point exists so the installed tool set is complete.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Manage S3 users, access keys and buckets of an ostor volume."""


if __name__ == "__main__":
    main()
