using System.Globalization;

namespace SharedLvm.Tests.Support;

/// <summary>
/// How many times the crash tests kill the controller at each enumerated fault point. A point armed
/// alone (p=1) kills at the same step of the same request every time, so one kill per point covers
/// it; repeats at varying moments are the random test's (SHAREDLVM_CRASH_KILLS). Three per point
/// took 20 of the main suite's 34 minutes on 2026-12-04 and pushed CI past its 90 (stop 26);
/// SHAREDLVM_KILLS_PER_POINT=3 still runs them for a soak.
/// </summary>
internal static class CrashKills
{
    public static int PerPoint { get; } = int.Parse(Environment.GetEnvironmentVariable("SHAREDLVM_KILLS_PER_POINT") ?? "1", CultureInfo.InvariantCulture);
}
