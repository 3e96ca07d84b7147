"""Values one stack of a stage hands to the stage's other stacks, through SSM parameters.

CloudFormation exports lock what they export: while another stack imports a value, the
exporting stack cannot change or remove it, so ordinary changes (turning MLflow off,
fewer Availability Zones) fail with "export ... is in use". Here the publishing stack
writes each value to an SSM parameter, and a consuming stack reads it through a
CloudFormation parameter of an SSM type, resolved at every deployment of the consumer.
Removing a value removes the parameter; the consumer, deployed after the publisher, no
longer reads it. Nothing locks.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_ssm as ssm

from constructs import Construct


class StageHandoff(Construct):
    """The published values of one stage, under ``/<namespace>/<key>`` in SSM.

    Attributes:
        namespace: the parameters' path prefix (``/mlops/<stage>``).
    """

    def __init__(self, scope: Construct, id: str, *, namespace: str) -> None:
        """
        Args:
            namespace: path prefix, starting with ``/``, unique per stage in the account
                and region.
        """
        super().__init__(scope, id)
        self.namespace = namespace.rstrip("/")
        self._lengths: dict[str, int | None] = {}

    def publish(self, key: str, value: str, *, description: str) -> None:
        """Publishes ``value`` (a token of the publishing stack) as ``<namespace>/<key>``."""
        self._claim(key, None)
        ssm.StringParameter(
            self,
            _construct_id(key),
            parameter_name=self._name(key),
            string_value=value,
            description=description,
        )

    def publish_list(self, key: str, values: Sequence[str], *, description: str) -> None:
        """Publishes a list whose length is known at synth (the consumer selects by index)."""
        if not values:
            raise ValueError(f"{self.node.path}: {key}: a published list cannot be empty")
        self._claim(key, len(values))
        ssm.StringListParameter(
            self,
            _construct_id(key),
            parameter_name=self._name(key),
            string_list_value=list(values),
            description=description,
        )

    def has(self, key: str) -> bool:
        """Whether ``key`` is published (optional values, such as the MLflow App)."""
        return key in self._lengths

    def read(self, scope: Construct, key: str) -> str:
        """The value of ``key`` in the stack of ``scope``, resolved at its deployment."""
        self._check(key, list_value=False)
        return ssm.StringParameter.value_for_string_parameter(scope, self._name(key))

    def read_list(self, scope: Construct, key: str) -> list[str]:
        """The items of list ``key`` in the stack of ``scope``, resolved at its deployment."""
        import aws_cdk as cdk

        length = self._check(key, list_value=True)
        tokens = ssm.StringListParameter.value_for_typed_list_parameter(scope, self._name(key))
        return [cdk.Fn.select(i, tokens) for i in range(length or 0)]

    def _name(self, key: str) -> str:
        return f"{self.namespace}/{key}"

    def _claim(self, key: str, length: int | None) -> None:
        if key in self._lengths:
            raise ValueError(f"{self.node.path}: {key} is published twice")
        self._lengths[key] = length

    def _check(self, key: str, *, list_value: bool) -> int | None:
        if key not in self._lengths:
            raise KeyError(f"{self.node.path}: nothing is published as {key!r}")
        length = self._lengths[key]
        if (length is not None) != list_value:
            raise TypeError(f"{self.node.path}: {key!r} is {'a' if length else 'not a'} list")
        return length


def _construct_id(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in key.replace("/", "-").split("-"))
