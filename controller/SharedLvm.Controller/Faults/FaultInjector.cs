using System.Diagnostics;

namespace SharedLvm.Controller.Faults;

/// <summary>
/// Named crash points in every write path: "{operation}.before_journal", ".after_journal",
/// ".during_lvm", ".after_lvm", ".before_reply"; for a batched commit "batch.before_journal",
/// "batch.after_journal", "batch.during_lvm", "batch.after_lvm", "batch.before_reply"; the agent's
/// half of an attach or detach "attach.after_activate", "detach.after_deactivate" (the tag writes
/// around them are "attach.*" and "detach.*" above); fences
/// "fence.after_intent", ".after_preempt", ".after_mark"; a drain or resume "drain.after_state",
/// "resume.after_state" (the local state changed, the LU's marks not yet); a pool's creation or
/// adoption "pool.after_pvcreate", ".after_vgcreate" (initialize only), ".after_lease" (its lease
/// area joined), ".after_store" (in the local catalogue, the LU's marks not yet); the writer lease "lease.after_area_lvcreate"
/// (before the area is formatted), "lease.after_acquire" (held, no epoch yet), "lease.after_epoch"
/// (before the LU's marks are taken), "marks.after_write" (one pool's copy written). Inert unless
/// the controller was started with SHAREDLVM_FAULTS (a test setting): then each listed point kills
/// the process with SIGKILL, with the given probability, so the crash test can prove restart converges (invariant 4).
/// </summary>
public sealed class FaultInjector
{
    public const string EnvironmentVariable = "SHAREDLVM_FAULTS";

    private readonly HashSet<string> _points;
    private readonly double _probability;
    private readonly Random _random;

    private FaultInjector(HashSet<string> points, double probability, int seed)
    {
        _points = points;
        _probability = probability;
        _random = new Random(seed);
    }

    public static FaultInjector None { get; } = new([], 0, 0);

    public bool Enabled => _points.Count > 0;

    /// <summary>Parses "p=0.2;seed=7;points=create.after_lvm,delete.*".</summary>
    public static FaultInjector FromEnvironment()
    {
        var spec = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(spec))
        {
            return None;
        }

        var settings = spec.Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0].Trim(), p => p.Length > 1 ? p[1].Trim() : string.Empty, StringComparer.Ordinal);
        var probability = double.Parse(settings.GetValueOrDefault("p", "0.1"), System.Globalization.CultureInfo.InvariantCulture);
        var seed = int.Parse(settings.GetValueOrDefault("seed", "0"), System.Globalization.CultureInfo.InvariantCulture);
        var points = settings.GetValueOrDefault("points", "*").Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        return new FaultInjector(points, probability, seed == 0 ? Environment.ProcessId : seed);
    }

    public void Hit(string point)
    {
        if (Selected(point))
        {
            Die(point);
        }
    }

    /// <summary>Kills the process while <paramref name="work"/> (an lvm command) is running, which may still commit.</summary>
    public async Task During(string point, Task work)
    {
        if (Selected(point))
        {
            int delay;
            lock (_random)
            {
                delay = _random.Next(0, 60);
            }

            await Task.WhenAny(work, Task.Delay(delay)).ConfigureAwait(false);
            Die(point);
        }

        await work.ConfigureAwait(false);
    }

    private bool Selected(string point)
    {
        if (!Enabled)
        {
            return false;
        }

        var operation = point.Split('.')[0];
        if (!_points.Contains("*") && !_points.Contains(point) && !_points.Contains(operation + ".*"))
        {
            return false;
        }

        lock (_random)
        {
            return _random.NextDouble() < _probability;
        }
    }

    private static void Die(string point)
    {
        Console.Error.WriteLine($"FAULT INJECTED at {point}: killing pid {Environment.ProcessId}");
        Console.Error.Flush();
        Process.GetCurrentProcess().Kill();
        Thread.Sleep(Timeout.Infinite);
    }
}
