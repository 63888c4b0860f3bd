"""The cold tier. S3: a bucket lifecycle configuration plus classification tags. Local: a ``cold/`` root.

On S3 the data stays at its keys and S3 moves it between storage classes: one rule per policy rule
with ``cold_after_days``, selecting objects by prefix (``<lake prefix>/<zone>/[<dataset>/]``) and by the
tags ``mlscale-classification`` and ``mlscale-rule``, transitioning them to an instant-access class
(GLACIER_IR, STANDARD_IA...) so manifests and readers keep working unchanged. S3 counts transition days
from an object's creation, not from its ``dt=`` day, so the plan tags a partition's objects once its
``dt=`` age passes ``cold_after_days`` (objects still in STANDARD) and S3 transitions them on its next
pass. A housekeeping rule aborts stale multipart uploads, expires old noncurrent versions (versioned /
Object Lock buckets: deleted objects leave versions; locked versions are never expired by S3) and
removes expired delete markers. Rules of the bucket not named ``mlscale-*`` are kept as they are.

On a local lake :meth:`mlscale.lake.Lake.move_partition` copies a partition's files to
``cold/<zone>/<dataset>/dt=…/`` and commits a manifest whose entries point there (paths starting with
``/``), so ``Lake.read_table`` keeps working; the hot copies are superseded (kept for readers that listed
them, removed by a later run once the grace period has passed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from mlscale.lifecycle.policy import Policy, Rule

logger = logging.getLogger(__name__)

RULE_PREFIX = "mlscale-"
TAG_CLASSIFICATION = "mlscale-classification"
TAG_RULE = "mlscale-rule"
HOUSEKEEPING_ID = f"{RULE_PREFIX}housekeeping"


def object_tags(rule: Rule) -> dict[str, str]:
    return {TAG_CLASSIFICATION: rule.classification, TAG_RULE: rule.name}


def lifecycle_rules(policy: Policy, base: str) -> list[dict[str, Any]]:
    """The bucket lifecycle rules the policy asks for, for a lake below key prefix ``base``."""
    rules: list[dict[str, Any]] = []
    for rule in policy.rules:
        if rule.cold_after_days is None:
            continue
        tags = [{"Key": k, "Value": v} for k, v in sorted(object_tags(rule).items())]
        prefixes = [f"{base}{rule.zone}/"] if "*" in rule.datasets else [f"{base}{rule.zone}/{d}/" for d in
                                                                          sorted(rule.datasets)]
        for i, prefix in enumerate(prefixes):
            rules.append({
                "ID": f"{RULE_PREFIX}{rule.name}" + (f"-{i}" if len(prefixes) > 1 else ""),
                "Status": "Enabled",
                "Filter": {"And": {"Prefix": prefix, "Tags": tags}},
                "Transitions": [{"Days": rule.cold_after_days, "StorageClass": policy.storage_class_of(rule)}],
            })
    rules.append({
        "ID": HOUSEKEEPING_ID, "Status": "Enabled", "Filter": {"Prefix": base},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": policy.abort_multipart_days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": policy.noncurrent_version_days},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    })
    return rules


def current_rules(s3: Any, bucket: str, counters: Any = None) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    if counters is not None:
        counters["get_requests"] += 1
    try:
        return list(s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise


def _normal(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as S3 returns it, for comparing (drop empty fields S3 adds or leaves out)."""
    doc = {k: v for k, v in rule.items() if v not in (None, [], {}) and k != "Prefix"}
    flt = doc.get("Filter", {})
    if "And" in flt:
        flt = {"And": {"Prefix": flt["And"].get("Prefix", ""),
                       "Tags": sorted(flt["And"].get("Tags", []), key=lambda t: t["Key"])}}
    doc["Filter"] = flt
    if "Transitions" in doc:
        doc["Transitions"] = [{"Days": t.get("Days"), "StorageClass": t.get("StorageClass")} for t in doc["Transitions"]]
    return doc


def merged_rules(existing: Iterable[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Others' rules unchanged, ours replaced by ``wanted``."""
    return [r for r in existing if not str(r.get("ID", "")).startswith(RULE_PREFIX)] + wanted


def needs_update(existing: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    ours = sorted((_normal(r) for r in existing if str(r.get("ID", "")).startswith(RULE_PREFIX)),
                  key=lambda r: r["ID"])
    return ours != sorted((_normal(r) for r in wanted), key=lambda r: r["ID"])


def put_rules(s3: Any, bucket: str, wanted: list[dict[str, Any]], counters: Any = None) -> list[dict[str, Any]]:
    """Apply ``wanted`` (keeping other rules of the bucket); returns the configuration put."""
    rules = merged_rules(current_rules(s3, bucket, counters), wanted)
    if counters is not None:
        counters["put_requests"] += 1
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    logger.info("s3://%s: lifecycle configuration with %d rules (%d mlscale)", bucket, len(rules), len(wanted))
    return rules


def tag_objects(s3: Any, bucket: str, keys: Iterable[str], tags: dict[str, str], counters: Any = None) -> int:
    """Add ``tags`` to each object (its other tags are kept). Returns the number of objects tagged."""
    done = 0
    for key in keys:
        if counters is not None:
            counters["get_requests"] += 1
            counters["put_requests"] += 1
        current = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])}
        if all(current.get(k) == v for k, v in tags.items()):
            continue
        current.update(tags)
        s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={
            "TagSet": [{"Key": k, "Value": v} for k, v in sorted(current.items())]})
        done += 1
    return done
