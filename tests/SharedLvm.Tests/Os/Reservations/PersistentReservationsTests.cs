using SharedLvm.Os.Processes;
using SharedLvm.Os.Reservations;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Os.Reservations;

/// <summary>The verbs over a scripted runner: the exact mpathpersist command lines, exit codes to kinds, timeouts.</summary>
public class PersistentReservationsTests
{
    private const string Map = "/dev/mapper/3600000000000000000000000ab000001";
    private static readonly ReservationKey A = ReservationKey.ForNodeNumber(1);
    private static readonly ReservationKey B = ReservationKey.ForNodeNumber(2);

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "reservations", name));

    [Fact]
    public async Task Register_is_register_and_ignore_on_the_map_with_a_timeout()
    {
        var runner = new ScriptedRunner();
        await new PersistentReservations(runner, TimeSpan.FromSeconds(7)).RegisterAsync(Map, A, TestContext.Current.CancellationToken);
        var call = Assert.Single(runner.Calls);
        Assert.Equal("mpathpersist --out --register-ignore --param-sark=0x534c564d00000001 " + Map, call.ToString());
        Assert.Equal(TimeSpan.FromSeconds(7), call.Timeout);
    }

    [Fact]
    public async Task Reserve_asks_for_write_exclusive_registrants_only()
    {
        var runner = new ScriptedRunner();
        await new PersistentReservations(runner, TimeSpan.FromSeconds(5)).ReserveAsync(Map, A, TestContext.Current.CancellationToken);
        Assert.Equal("mpathpersist --out --reserve --param-rk=0x534c564d00000001 --prout-type=5 " + Map, Assert.Single(runner.CommandLines));
    }

    [Fact]
    public async Task Preempt_tries_preempt_and_abort_first()
    {
        var runner = new ScriptedRunner();
        var mode = await new PersistentReservations(runner, TimeSpan.FromSeconds(5)).PreemptAsync(Map, B, A, TestContext.Current.CancellationToken);
        Assert.Equal(PreemptMode.PreemptAndAbort, mode);
        Assert.Equal("mpathpersist --out --preempt-abort --param-rk=0x534c564d00000002 --param-sark=0x534c564d00000001 --prout-type=5 " + Map, Assert.Single(runner.CommandLines));
    }

    [Fact]
    public async Task Preempt_falls_back_to_plain_preempt_when_the_target_refuses_abort()
    {
        // tgt 1.0.85 answers ILLEGAL REQUEST to PREEMPT AND ABORT (lab.md): MPATH_PR_ILLEGAL_REQ = 5.
        var runner = new ScriptedRunner().On("--preempt-abort", 5, stderr: "PR out: command failed");
        var mode = await new PersistentReservations(runner, TimeSpan.FromSeconds(5)).PreemptAsync(Map, B, A, TestContext.Current.CancellationToken);
        Assert.Equal(PreemptMode.Preempt, mode);
        Assert.Equal(2, runner.Calls.Count);
        Assert.StartsWith("mpathpersist --out --preempt --param-rk=", runner.Calls[1].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Read_keys_and_reservation_parse_the_output()
    {
        var runner = new ScriptedRunner()
            .On("--read-keys", 0, Fixture("mpathpersist-read-keys-two-nodes.txt"))
            .On("--read-reservation", 0, Fixture("mpathpersist-read-reservation-held.txt"));
        var pr = new PersistentReservations(runner, TimeSpan.FromSeconds(5));
        Assert.Equal(2, (await pr.ReadKeysAsync(Map, TestContext.Current.CancellationToken)).Registrations(A));
        Assert.Equal(A, (await pr.ReadReservationAsync(Map, TestContext.Current.CancellationToken)).Holder);
    }

    [Theory]
    [InlineData(11, PrErrorKind.ReservationConflict)]
    [InlineData(5, PrErrorKind.NotSupported)]
    [InlineData(13, PrErrorKind.DeviceUnavailable)]
    [InlineData(15, PrErrorKind.Failed)]
    public async Task Exit_codes_become_typed_errors(int exitCode, PrErrorKind kind)
    {
        var runner = new ScriptedRunner().On("mpathpersist", exitCode, stderr: "failed");
        var e = await Assert.ThrowsAsync<PersistentReservationException>(() =>
            new PersistentReservations(runner, TimeSpan.FromSeconds(5)).RegisterAsync(Map, A, TestContext.Current.CancellationToken));
        Assert.Equal(kind, e.Kind);
        Assert.Equal(exitCode, e.ExitCode);
    }

    [Fact]
    public async Task A_timeout_surfaces_as_the_runners_timeout()
    {
        var runner = new ScriptedRunner().OnTimeout("mpathpersist");
        await Assert.ThrowsAsync<ProcessTimeoutException>(() =>
            new PersistentReservations(runner, TimeSpan.FromSeconds(5)).ReadKeysAsync(Map, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void Sg_persist_exit_codes_are_classified_too()
    {
        Assert.Equal(PrErrorKind.ReservationConflict, PersistentReservationException.ClassifySgPersist(24));
        Assert.Equal(PrErrorKind.NotSupported, PersistentReservationException.ClassifySgPersist(5));
    }

    [Fact]
    public void Sg_io_refused_on_every_path_is_the_callers_privileges_not_an_lu_without_pr()
    {
        // mpathpersist 0.9.4 in the SAN lab's agent unit without CAP_SYS_RAWIO, on either LU (the
        // one with PR behind tgt too); with the capability the emulated scsi-hd answers exit 5.
        const string Lab = """
            422.819245 | can't set open fds limit to 1048576/1048576 : Operation not permitted
            423.202266 | sdb: IOCTL failed -1
            423.216809 | sdc: IOCTL failed -1
            Persistent Reserve IN command failed
            """;
        Assert.Equal(PrErrorKind.IoctlRefused, PersistentReservationException.ClassifyMpathpersist(15, Lab));
        Assert.Contains("CAP_SYS_RAWIO", new PersistentReservationException("mpathpersist --in --read-keys /dev/mapper/x", 15, Lab, PrErrorKind.IoctlRefused).Message, StringComparison.Ordinal);
        Assert.Equal(PrErrorKind.NotSupported, PersistentReservationException.ClassifyMpathpersist(5, "Persistent Reserve IN command failed"));
        Assert.Equal(PrErrorKind.Failed, PersistentReservationException.ClassifyMpathpersist(15, "Persistent Reserve IN command failed"));
    }
}
