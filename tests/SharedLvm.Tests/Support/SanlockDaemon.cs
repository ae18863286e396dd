using System.Diagnostics;

namespace SharedLvm.Tests.Support;

/// <summary>
/// A real sanlock daemon standing for one controller host: its own run directory (socket, pid file),
/// so several run side by side on this machine, unprivileged (no mlockall, no RT priority) and without a
/// watchdog (-w 0: this kernel has none; the lab runs wdmd with softdog). Processes reach it through
/// SANLOCK_RUN_DIR in <see cref="Environment"/>.
/// </summary>
internal sealed class SanlockDaemon : IDisposable
{
    public const string SkipVariable = LoopDevice.SkipVariable;
    private readonly Process _process;

    private SanlockDaemon(Process process, string runDirectory)
    {
        _process = process;
        RunDirectory = runDirectory;
    }

    public string RunDirectory { get; }

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["SANLOCK_RUN_DIR"] = RunDirectory,
        ["SANLOCK_PRIVILEGED"] = "0",
    };

    public int Pid => _process.Id;

    public string Log => File.Exists(Path.Combine(RunDirectory, "daemon.log")) ? File.ReadAllText(Path.Combine(RunDirectory, "daemon.log")) : string.Empty;

    public static async Task<SanlockDaemon> StartAsync()
    {
        Requirement.Demand(File.Exists("/usr/sbin/sanlock"), "sanlock is not installed (Debian: sanlock, libsanlock-client1)", SkipVariable);
        Requirement.Demand(File.Exists("/usr/lib/x86_64-linux-gnu/libsanlock_client.so.1"), "libsanlock-client1 is not installed", SkipVariable);
        var runDirectory = Directory.CreateTempSubdirectory("slvm-sanlock-").FullName;
        // -D logs everything to stderr: into the run directory, for a failing test to show.
        var info = new ProcessStartInfo("/bin/sh");
        foreach (var argument in (string[])["-c", "exec /usr/sbin/sanlock daemon -D -w 0 -U root -G root 2>\"$SANLOCK_RUN_DIR/daemon.log\""])
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["SANLOCK_RUN_DIR"] = runDirectory;
        info.Environment["SANLOCK_PRIVILEGED"] = "0";
        var process = Process.Start(info)!;
        var socket = Path.Combine(runDirectory, "sanlock.sock");
        for (var i = 0; i < 100 && !File.Exists(socket); i++)
        {
            Assert.False(process.HasExited, "the sanlock daemon exited at start");
            await Task.Delay(50);
        }

        Assert.True(File.Exists(socket), "the sanlock daemon did not create its socket");
        return new SanlockDaemon(process, runDirectory);
    }

    /// <summary>SIGSTOP/SIGCONT: a host that stops renewing its delta lease, as a paused VM does.</summary>
    public void Pause() => ProcessSignals.Pause(Pid);

    public void Resume() => ProcessSignals.Resume(Pid);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
        Directory.Delete(RunDirectory, recursive: true);
    }

}
