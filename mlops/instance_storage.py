"""Which SageMaker instance types have local NVMe instance storage.

SageMaker refuses ``VolumeKmsKeyId`` for a job on an instance type with local NVMe
storage (that storage is encrypted by the instance's hardware, and no EBS volume is
attached). The pipeline definition therefore sets the stage's key on job volumes only for
EBS-backed types, and its start-time instance-type parameters accept only types of the
same kind as the configured one. A family in neither list below is refused by config
until someone adds it here (AWS's instance type pages say which kind it is).
"""

from __future__ import annotations

from functools import cache

#: Families whose instances have EBS volumes only.
EBS_ONLY_FAMILIES = frozenset(
    {
        "c4", "c5", "c5n", "c6i", "c7i", "c7i-flex", "c8i", "c8i-flex",
        "m4", "m5", "m6i", "m7i", "m7i-flex", "m8i", "m8i-flex",
        "p2", "p3", "r5", "r6i", "r7i", "r8i", "r8i-flex", "t3",
    }
)  # fmt: skip
#: Families whose instances have local NVMe instance storage.
INSTANCE_STORAGE_FAMILIES = frozenset(
    {
        "c5d", "m5d", "r5d", "g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de",
        "p5", "p5e", "p5en", "trn1", "trn1n", "trn2",
    }
)  # fmt: skip


def family(instance_type: str) -> str:
    """``ml.g4dn.xlarge`` -> ``g4dn``."""
    return instance_type.split(".")[1] if instance_type.count(".") == 2 else instance_type


def has_instance_storage(instance_type: str) -> bool | None:
    """True for local NVMe storage, False for EBS only, None when the family is unknown."""
    name = family(instance_type)
    if name in INSTANCE_STORAGE_FAMILIES:
        return True
    if name in EBS_ONLY_FAMILIES:
        return False
    return None


@cache
def _offered(shape: str) -> tuple[str, ...]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(sorted(model.shape_for(shape).enum))


def same_storage_types(shape: str, instance_type: str) -> list[str]:
    """The types SageMaker offers for ``shape`` (``TrainingInstanceType``, ...) with the
    same kind of storage as ``instance_type``: what a start-time override may choose."""
    kind = has_instance_storage(instance_type)
    return [t for t in _offered(shape) if has_instance_storage(t) is kind]
