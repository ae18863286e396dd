using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Controller;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Fencing;
using SharedLvm.Os.Reservations;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Controller.Fencing;

/// <summary>The controller host registers its own key on the pool LUs it writes, and only on multipath maps.</summary>
public class ControllerRegistrationTests
{
    private const string Map = "/dev/mapper/3600000000000000000000000ab000003";

    private static (ControllerRegistration Registration, ScriptedRunner Runner, EventBus Events) Create(ulong hostId = 2)
    {
        var runner = new ScriptedRunner();
        var events = new EventBus();
        return (new ControllerRegistration(runner, new ControllerOptions { HostId = hostId }, events, NullLogger<ControllerRegistration>.Instance), runner, events);
    }

    [Fact]
    public async Task On_a_multipath_map_it_registers_its_own_key_on_every_path_with_mpathpersist()
    {
        var (registration, runner, _) = Create();
        await registration.EnsureAsync("prlab", Map, CancellationToken.None);

        var call = Assert.Single(runner.CommandLines);
        Assert.Equal($"mpathpersist --out --register-ignore --param-sark={registration.Key} {Map}", call);
        Assert.True(registration.Key.IsControllerHost);
        Assert.Equal(0U, registration.Key.NodeNumber);
        Assert.NotEqual(ReservationKey.ForControllerHost(1), registration.Key);
    }

    [Fact]
    public async Task A_loop_device_is_no_initiator_and_needs_no_key()
    {
        var (registration, runner, _) = Create();
        await registration.EnsureAsync("lab", "/dev/loop3", CancellationToken.None);
        Assert.Empty(runner.Calls);
    }

    [Fact]
    public async Task An_lu_without_pr_is_quiet_and_a_failure_raises_an_alarm_without_stopping_the_pool()
    {
        var (registration, runner, events) = Create();
        runner.On("--register-ignore", 5, stderr: "Persistent Reserve OUT command failed");
        await registration.EnsureAsync("lab", Map, CancellationToken.None);
        Assert.Equal(0, events.AlarmCount);

        var (failing, failingRunner, failingEvents) = Create();
        failingRunner.On("--register-ignore", 15, stderr: "sdb: IOCTL failed -1");
        await failing.EnsureAsync("prlab", Map, CancellationToken.None);
        Assert.Equal(1, failingEvents.AlarmCount);
    }

    [Fact]
    public void Controller_keys_never_collide_with_node_keys()
    {
        Assert.False(ReservationKey.ForNodeNumber(1).IsControllerHost);
        Assert.NotEqual(ReservationKey.ForNodeNumber(0x7FFFFFFF), ReservationKey.ForControllerHost(0));
        Assert.True(ReservationKey.ForControllerHost(0).IsSharedLvm);
    }
}
