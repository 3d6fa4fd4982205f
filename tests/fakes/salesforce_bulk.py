"""Bulk API 2.0 ingest for FakeSalesforce (tests/fakes/salesforce.py): jobs, CSV upload, states, results.

`POST …/jobs/ingest` (upsert only, `externalIdFieldName`, `contentType` CSV, `lineEnding`, `columnDelimiter`)
→ JobInfo `Open`; `PUT …/jobs/ingest/{id}/batches` (`text/csv`) → 201 without a body; `PATCH …/jobs/ingest/{id}`
`{"state":"UploadComplete"}` (or `"Aborted"`) → JobInfo; `GET …/jobs/ingest/{id}` is `InProgress` for
`job_polls_until_done` polls, then the rows are written and the job is `JobComplete` (or `Failed` with
`errorMessage`); `GET …/successfulResults/`, `…/failedResults/`, `…/unprocessedrecords/` answer CSV with
`"sf__Id","sf__Created"` / `"sf__Id","sf__Error"` before the uploaded columns (vector SF-6), LF line endings and
the job's delimiter (results' line endings are unverified; a csv reader takes either); `DELETE` a finished job
→ 204. Rows are checked like collections records; `sf__Error` reads `CODE:message:fields --` (SF-6, unverified).

Choices where the spec is silent or says "unverified" (the strict side):
- One upload per job (a second PUT is a 400, as Salesforce answers "Found multiple contents for job"); its size
  counts as base64 (4/3 of the bytes) against 150,000,000 (150 MB read as the smaller decimal megabytes).
- A header naming an unknown field, missing the external id column, repeating a column, a row with another
  number of columns, or line endings other than the job's `lineEnding` fail the whole job (`Failed`, every row
  unprocessed). An empty value leaves the field unchanged; `#N/A` sets it to null.
- Every copy of an external id repeated within a job fails `DUPLICATE_VALUE`.
- Results of a job that has not finished are refused with 409 `INVALIDJOBSTATE` rather than a partial CSV.
- The `UNPROCESSED` fault stops processing at the next row: earlier rows keep their results, that row and the
  rest are unprocessed, and the job ends `Failed` (a transient failure: resubmit them in a new job).
"""

import csv
import io
from datetime import UTC, datetime

DELIMITERS = {"COMMA": ",", "BACKQUOTE": "`", "CARET": "^", "PIPE": "|", "SEMICOLON": ";", "TAB": "\t"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
TERMINAL = ("JobComplete", "Failed", "Aborted")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class JobFailed(Exception):
    pass


class Refused(Exception):
    def __init__(self, status: int, body: object) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def sf_error(status: int, code: str, message: str) -> Refused:
    """Salesforce REST errors are a JSON array of {message, errorCode} [SF-ERR]."""
    return Refused(status, [{"message": message, "errorCode": code}])


class BulkIngest:
    """Mixed into FakeSalesforce, whose lock is held around every call; it uses the fake's `_check`, `_write`,
    `_record_fault`, `_new_id`, `_json`, `fields`, `ids`, `jobs`, `job_polls_until_done` and `max_upload_bytes`."""

    def _bulk(self, method: str, parts: list[str], headers, raw: bytes) -> tuple[int, object]:
        if not parts:
            if method != "POST":
                raise sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST")
            return 200, self._create_job(self._json(raw))
        job = self.jobs.get(parts[0])
        if job is None or len(parts) > 2:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        state = job["info"]["state"]
        if len(parts) == 1 and method == "GET":
            self._poll(job)
            return 200, self._info(job, counters=True)
        if len(parts) == 1 and method == "PATCH":
            wanted = (self._json(raw) or {}).get("state")
            if wanted not in ("UploadComplete", "Aborted"):
                raise sf_error(400, "INVALIDJOBSTATE", f"a job cannot be set to state {wanted}")
            if state in TERMINAL or (wanted == "UploadComplete" and state != "Open"):
                raise sf_error(409, "INVALIDJOBSTATE", f"Job is in state {state}")
            job["info"]["state"] = wanted
            return 200, self._info(job, counters=False)
        if len(parts) == 1 and method == "DELETE":
            if state not in TERMINAL:
                raise sf_error(409, "INVALIDJOBSTATE", f"Job is in state {state}; abort it first")
            del self.jobs[parts[0]]
            return 204, None
        if parts[1:] == ["batches"] and method == "PUT":
            return self._upload(job, headers, raw)
        if parts[1] in ("successfulResults", "failedResults", "unprocessedrecords") and method == "GET":
            if state not in TERMINAL:
                raise sf_error(409, "INVALIDJOBSTATE", f"Job is in state {state}: results come once it ends")
            return 200, self._results(job, parts[1])
        raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def _create_job(self, body: object) -> dict:
        body = body if isinstance(body, dict) else {}
        sobject, ext_field = body.get("object"), body.get("externalIdFieldName")
        if body.get("operation") != "upsert":
            raise sf_error(400, "INVALIDJOB", f"the fake supports operation upsert, not {body.get('operation')}")
        if sobject not in self.fields:
            raise sf_error(400, "INVALIDENTITY", f"Entity '{sobject}' is not supported by the Bulk API")
        if not self.fields[sobject].get(ext_field, ("", 0, False))[2]:
            raise sf_error(400, "INVALIDJOB", f"externalIdFieldName {ext_field} is not an external id of {sobject}")
        settings = {"contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"}
        for key, allowed in (("contentType", ("CSV",)), ("lineEnding", LINE_ENDINGS), ("columnDelimiter", DELIMITERS)):
            settings[key] = body.get(key, settings[key])
            if settings[key] not in allowed:
                raise sf_error(400, "INVALIDJOB", f"{key} {settings[key]} is not one of {', '.join(allowed)}")
        job_id = self._new_id("750")
        stamp = _now()
        info = {"id": job_id, "operation": "upsert", "object": sobject, "createdById": "005XX000001",
                "createdDate": stamp, "systemModstamp": stamp, "state": "Open", "externalIdFieldName": ext_field,
                "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(self.api_version[1:]),
                "contentUrl": f"services/data/{self.api_version}/jobs/ingest/{job_id}/batches",
                "lineEnding": settings["lineEnding"], "columnDelimiter": settings["columnDelimiter"]}
        self.jobs[job_id] = {"info": info, "csv": None, "polls": 0, "header": [], "successful": [], "failed": [],
                             "unprocessed": [], "error": None}
        return dict(info)

    def _upload(self, job: dict, headers, raw: bytes) -> tuple[int, None]:
        if job["info"]["state"] != "Open":
            raise sf_error(409, "INVALIDJOBSTATE", f"Job is in state {job['info']['state']}: uploads need Open")
        if not headers.get("Content-Type", "").startswith("text/csv"):
            raise sf_error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be text/csv")
        if job["csv"] is not None:
            raise sf_error(400, "BULK_API_ERROR", f"Found multiple contents for job: {job['info']['id']}, please "
                           "'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you "
                           "only do 'PUT' once on a given Job.")
        if (len(raw) + 2) // 3 * 4 > self.max_upload_bytes:
            raise sf_error(400, "BULK_API_ERROR", "the CSV exceeds 150 MB of base64 encoded content")
        job["csv"] = raw
        return 201, None

    def _poll(self, job: dict) -> None:
        info = job["info"]
        if info["state"] in ("UploadComplete", "InProgress"):
            job["polls"] += 1
            info["state"] = "InProgress"
            if job["polls"] > self.job_polls_until_done:
                self._process(job)

    def _info(self, job: dict, counters: bool) -> dict:
        info = dict(job["info"])
        if counters:
            failed = len(job["failed"])
            info.update(jobType="V2Ingest", numberRecordsProcessed=len(job["successful"]) + failed,
                        numberRecordsFailed=failed, retries=0, totalProcessingTime=0, apiActiveProcessingTime=0,
                        apexProcessingTime=0)
            if job["error"]:
                info["errorMessage"] = job["error"]
        return info

    def _parse(self, job: dict) -> tuple[list[str], list[list[str]]]:
        info = job["info"]
        try:
            text = (job["csv"] or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise JobFailed("InvalidBatch : the CSV is not UTF-8") from None
        crlf = text.count("\r\n")
        if (info["lineEnding"] == "LF" and crlf) or (info["lineEnding"] == "CRLF" and text.count("\n") > crlf):
            raise JobFailed(f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is "
                            f"{info['lineEnding']}")
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[info["columnDelimiter"]])
            rows = [r for r in reader if r]
        except csv.Error as error:
            raise JobFailed(f"InvalidBatch : the CSV cannot be read: {error}") from None
        if not rows:
            raise JobFailed("InvalidBatch : No data found")
        header, rows = rows[0], rows[1:]
        job["header"] = header
        for name in header:
            if name not in self.fields[info["object"]]:
                raise JobFailed(f"InvalidBatch : Field name not found : {name}")
        if len(set(header)) < len(header):
            raise JobFailed("InvalidBatch : Duplicate field name in the header")
        if info["externalIdFieldName"] not in header:
            raise JobFailed(f"InvalidBatch : The 'upsert' batch must contain the external id field "
                            f"{info['externalIdFieldName']}")
        for number, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise JobFailed(f"InvalidBatch : Wrong number of columns in line {number}: {len(row)}, "
                                f"the header has {len(header)}")
        return header, rows

    def _process(self, job: dict) -> None:
        info = job["info"]
        sobject, ext_field = info["object"], info["externalIdFieldName"]
        try:
            header, rows = self._parse(job)
        except JobFailed as failed:
            info["state"], job["error"] = "Failed", str(failed)
            return
        at = header.index(ext_field)
        keys = [row[at] for row in rows]
        repeated = {k for k in keys if k and keys.count(k) > 1}
        for index, row in enumerate(rows):
            if self._record_fault(("UNPROCESSED",)):
                job["unprocessed"] = rows[index:]
                info["state"], job["error"] = "Failed", "InternalServerError : processing stopped before every row"
                return
            if row[at] in repeated:
                job["failed"].append(("", f"DUPLICATE_VALUE:Duplicate external id specified: {row[at]}:--", row))
                continue
            values = {name: (None if value == "#N/A" else value) for name, value in zip(header, row, strict=True)
                      if value != "" or name == ext_field}
            typed, error = self._check(sobject, ext_field, values, from_csv=True)
            if error:
                fields = f"{','.join(error['fields'])} --" if error["fields"] else "--"
                record_id = self.ids.get((sobject, row[at]), "")
                job["failed"].append((record_id, f"{error['statusCode']}:{error['message']}:{fields}", row))
            else:
                record_id, created = self._write(sobject, ext_field, typed)
                job["successful"].append((record_id, "true" if created else "false", row))
        info["state"] = "JobComplete"

    def _results(self, job: dict, kind: str) -> str:
        delimiter = DELIMITERS[job["info"]["columnDelimiter"]]
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
        if kind == "unprocessedrecords":
            if not (job["unprocessed"] or job["successful"] or job["failed"]):
                return (job["csv"] or b"").decode("utf-8", "replace")  # none was processed: the upload as it came
            writer.writerows([job["header"], *job["unprocessed"]])
            return out.getvalue()
        names = ("sf__Id", "sf__Created") if kind == "successfulResults" else ("sf__Id", "sf__Error")
        lines = []
        for first, second, row in [(*names, job["header"]), *job[kind[:-len("Results")]]]:
            writer.writerow(row)
            quoted = delimiter.join('"' + v.replace('"', '""') + '"' for v in (first, second))
            lines.append(f"{quoted}{delimiter}{out.getvalue()}" if row else f"{quoted}\n")  # no header read
            out.seek(0)
            out.truncate()
        return "".join(lines)
