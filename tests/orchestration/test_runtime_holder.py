from orchestration.edge.client_auth import NoAuth
from orchestration.plan import Layer, Plan
from orchestration.routing import Router
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, RuntimeHolder


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_holder(versions: list[str], clock: FakeClock) -> tuple[RuntimeHolder, list[str]]:
    loads: list[str] = []
    reads: list[str] = []

    def load() -> LoadedConfig:
        loads.append(versions[-1])
        return LoadedConfig(
            plan=Plan(version=versions[-1], layer=Layer(name="t", base_path="/"), services={}, endpoints=()),
            api_keys={},
        )

    def read_version() -> str:
        reads.append(versions[-1])
        return versions[-1]

    def build(config: LoadedConfig) -> GatewayRuntime:
        return GatewayRuntime(
            plan=config.plan, router=Router(config.plan), authenticator=NoAuth(), executor=None, pool=None
        )

    return RuntimeHolder(load=load, read_version=read_version, build=build, poll_s=1.0, clock=clock), loads


def test_version_is_read_at_most_once_per_poll_interval_and_plan_rebuilt_on_change() -> None:
    versions, clock = ["v1"], FakeClock()
    holder, loads = make_holder(versions, clock)
    assert holder.current().plan.version == "v1"
    versions.append("v2")
    clock.now += 0.5
    assert holder.current().plan.version == "v1"  # not yet looked
    clock.now += 0.6
    assert holder.current().plan.version == "v2"
    assert loads == ["v1", "v2"]


def test_unchanged_version_does_not_rebuild() -> None:
    versions, clock = ["v1"], FakeClock()
    holder, loads = make_holder(versions, clock)
    first = holder.current()
    for _ in range(5):
        clock.now += 2
        assert holder.current() is first
    assert loads == ["v1"]
