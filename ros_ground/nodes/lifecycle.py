"""The skeleton both model nodes share: settings as parameters, lifecycle bookkeeping, and
the topics, services and action servers a node opens on activate, closed in one place.

A subclass implements `load` (configure: build models from the parameter values; raise on
failure), `open` (activate: create subscriptions and services through `opened`, and, at the
first activate, action servers through `configured`: kept until cleanup, so the results of goals
answered at deactivate still reach their clients, they refuse goals while inactive),
`before_close` (deactivate: answer what is pending while the publishers still publish),
`unload` (cleanup) and `apply` (a checked live change). Publishers are lifecycle publishers,
made at configure with `create_lifecycle_publisher`: they publish only while active.
"""

from __future__ import annotations

from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionServer
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.publisher import Publisher
from rclpy.service import Service
from rclpy.timer import Timer

from ros_ground.nodes import params
from ros_ground.nodes.common import freeze_loaded_objects, release_memory


class ModelNode(LifecycleNode):
    """A lifecycle node that declares `settings` as parameters and checks every change."""

    def __init__(self, name: str, settings, **kwargs):
        super().__init__(name, **kwargs)
        self.settings = settings
        # overrides rclpy refused (range, type): declared with their defaults, and the node
        # refuses to configure until each is set again, rather than run on settings not asked for
        self._refused = params.declare(self, settings, read_only=params.READ_AT_START)
        for name, why in self._refused.items():
            self.get_logger().error(f"parameter {name}: {why}; the node will not configure "
                                    f"until {name} is set to a valid value")
        self._opened: list = []
        self._configured: list = []  # action servers, from the first activate to cleanup
        self._lifecycle_pubs: list = []
        self.add_pre_set_parameters_callback(params.retype_changes(self, settings))
        self.add_on_set_parameters_callback(params.refusing_on_error(self._on_set_parameters))

    # ---- for subclasses --------------------------------------------------------------------
    def load(self, p: dict) -> None:
        """Configure: build models from the checked parameter values `p`."""

    def unload(self) -> None:
        """Cleanup (and a failed configure): drop the models."""

    def open(self, p: dict) -> None:
        """Activate: create subscriptions and services (register each with `opened`)."""

    def before_close(self) -> None:
        """Deactivate, before the entities close: answer or drop pending work."""

    def before_release(self) -> None:
        """Cleanup or shutdown, before the action servers are destroyed: let the results of
        goals just answered reach their clients."""

    def apply(self, p: dict) -> None:
        """A change of parameters was accepted; `p` holds every checked value."""

    def shutdown_worker(self) -> None:
        """Stop the node's own threads (called before destroy_node)."""

    def values(self) -> dict:
        """Every parameter's current value, checked, in the engine's form."""
        from ros_ground import settings

        return settings.check(self.settings, params.values(self, self.settings))

    def opened(self, entity):
        self._opened.append(entity)
        return entity

    def configured(self, entity: ActionServer) -> ActionServer:
        """An action server kept until cleanup or shutdown (made at the first activate, so a
        client's `wait_for_server` still waits for the node to start)."""
        self._configured.append(entity)
        return entity

    def lifecycle_publisher(self, msg_type, topic: str, qos) -> Publisher:
        publisher = self.create_lifecycle_publisher(msg_type, topic, qos)
        self._lifecycle_pubs.append(publisher)
        return publisher

    # ---- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        if self._refused:
            self.get_logger().error(
                "configure refused: invalid parameters given at start: "
                + "; ".join(f"{name}: {why}" for name, why in self._refused.items()))
            return TransitionCallbackReturn.FAILURE
        try:
            self.load(self.values())
        except Exception as exc:  # any load failure must leave the node up and reconfigurable
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        freeze_loaded_objects(self)
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        try:
            self.open(self.values())
        except Exception as exc:  # e.g. a topic rcl refuses: stay inactive, nothing half-open
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}")
            self._close_opened()
            return TransitionCallbackReturn.FAILURE
        return super().on_activate(state)  # activates the lifecycle publishers

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._answer_pending()
        self._close_opened()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        # from any primary state: queued work is answered while the publishers still publish,
        # then the node holds nothing (finalized has no way back to configure)
        self.shutdown_worker()
        self._answer_pending()
        self._close_opened()
        self._release()
        self.get_logger().info(f"shut down from {state.label}: pending requests answered, "
                               "topics, services and models released")
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        # rclpy turns an exception out of a transition into ErrorProcessing without logging it
        self.get_logger().error(f"a transition from {state.label} raised; the node is back to "
                                "unconfigured, its entities and models released")
        self._close_opened()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _answer_pending(self) -> None:
        if not self._opened:
            return
        try:
            self.before_close()
        except Exception as exc:  # the entities must close all the same
            self.get_logger().error(f"answering pending work failed: {type(exc).__name__}: {exc}")

    def _release(self) -> None:
        """Destroy the lifecycle publishers and drop the models (cleanup, a failed configure)."""
        for publisher in self._lifecycle_pubs:
            self.destroy_lifecycle_publisher(publisher)
        if self._configured:
            self.before_release()
        for server in self._configured:
            server.destroy()
        self._lifecycle_pubs, self._configured = [], []
        self.unload()
        release_memory(dropped_by=self)

    def _close_opened(self) -> None:
        for entity in self._opened:
            if isinstance(entity, ActionServer):
                entity.destroy()
            elif isinstance(entity, Service):
                self.destroy_service(entity)
            elif isinstance(entity, Timer):
                self.destroy_timer(entity)
            elif hasattr(entity, "close"):  # a helper owning its own entities (CameraInput)
                entity.close()
            else:
                self.destroy_subscription(entity)
        self._opened = []

    def _on_set_parameters(self, changes):
        # read before the change is made (the callback runs first): a value set to what it is
        # changes nothing to wait for
        changed = [c for c in changes
                   if self.has_parameter(c.name) and self.get_parameter(c.name).value != c.value]
        result, checked = params.check_changes(self, self.settings, changes)
        names = {c.name for c in changed}
        if result.successful and "device" in names:
            result = _usable_device(checked["device"])  # "cuda:3" on a machine with one GPU
        if result.successful and names & set(params.SPEC_SETTINGS):
            # what the next configure would refuse, refused now in its words: /no/such/dir
            problem = params.spec_change_problem(params.values(self, self.settings), checked)
            if problem is not None:
                result = SetParametersResult(successful=False, reason=problem)
        if result.successful:
            for change in changes:
                self._refused.pop(change.name, None)
            self.apply(checked)
            later = params.read_at_configure(self.settings, changed)
            if later:  # rclpy drops a success's reason, so the log says it
                self.get_logger().info(later)
            costly = params.half_on_cpu(checked) if names & {"dtype", "device"} else ""
            if costly:  # allowed (it halves the memory), but slow
                self.get_logger().warning(costly)
        return result


def _usable_device(device: str) -> SetParametersResult:
    """Whether torch here can run on `device` (device.resolve_device), as a set-parameters
    result: the value waits for the next configure, which would fail on it then."""
    from ros_ground.device import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        return SetParametersResult(successful=False, reason=str(exc))
    return SetParametersResult(successful=True)
