"""File export: a sync's whole model written as CSV or Parquet files with a manifest, under a folder or an
fsspec URL, for the tools that take a file rather than an API call. README.md beside this file."""

from cdp_assets.activation.destinations.base import ObjectSpec, PiiPolicy, RecordsDestination
from cdp_assets.activation.destinations.file_export.client import FileClient
from cdp_assets.activation.destinations.file_export.options import export_options
from cdp_assets.activation.destinations.file_export.snapshot import write_snapshot

DESTINATION = RecordsDestination(
    name="file_export",
    title="File export",
    kinds=("file",),
    variables=(),
    # Every run writes the whole snapshot, so there is nothing to upsert, clear or delete record by record.
    objects={"file": ObjectSpec("file", keys=("*",), modes=("upsert",), on_leave=("nothing",))},
    # Each export declares the fields it writes in clear (`options.clear`); nothing else may hold an email
    # address or a phone number.
    pii=PiiPolicy(),
    pii_from_options=True,
    client=FileClient,
    options=export_options,
    snapshot=write_snapshot,
    notes="the whole snapshot as one CSV or Parquet file per run, renamed into place whole, with a manifest "
          "(rows, SHA-256, columns); the newest `keep` stay",
)
