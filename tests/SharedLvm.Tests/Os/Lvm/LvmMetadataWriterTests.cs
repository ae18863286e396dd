using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>
/// The snapshot verbs' lvm sequences, over a runner that records each command: which LV each may
/// activate, that it is deactivated whatever happens, and where a merge resumes. The same verbs
/// run against real lvm and device-mapper in the SAN lab (S9y).
/// </summary>
public sealed class LvmMetadataWriterTests
{
    private readonly RecordingRunner _runner = new();
    private readonly List<string> _guarded = [];

    private LvmMetadataWriter Writer() =>
        new(_runner, new LvmConfig { Devices = ["/dev/mapper/3600a"] }, TimeSpan.FromSeconds(30), guard: _ =>
        {
            _guarded.Add(_runner.Commands.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return Task.CompletedTask;
        });

    [Fact]
    public async Task A_snapshot_may_activate_only_the_new_cow_lv_and_leaves_it_inactive()
    {
        await Writer().LvSnapshotAsync("vg", "origin", "snap", 8 * 1024 * 1024, ["sharedlvm"], TestContext.Current.CancellationToken);

        Assert.Equal(["lvcreate --yes -s -L 8388608b -n snap --addtag sharedlvm vg/origin", "lvchange -an vg/snap"], _runner.Commands);
        Assert.All(_runner.Configs, c => Assert.Contains("global{activation=1}", c, StringComparison.Ordinal));
        Assert.All(_runner.Configs, c => Assert.Contains("activation{volume_list=[\"vg/snap\"]", c, StringComparison.Ordinal));
        Assert.Equal(["0"], _guarded);
    }

    [Fact]
    public async Task A_failed_snapshot_is_still_deactivated_and_the_failure_is_what_the_caller_hears()
    {
        _runner.Fail["lvcreate"] = (5, "  Aborting. Failed to activate snapshot exception store.");
        var e = await Assert.ThrowsAsync<LvmException>(() => Writer().LvSnapshotAsync("vg", "origin", "snap", 4096, [], TestContext.Current.CancellationToken));
        Assert.Equal("lvcreate", e.Command);
        Assert.Equal("lvchange -an vg/snap", _runner.Commands[^1]);
    }

    [Fact]
    public async Task A_merge_records_it_activates_the_origin_alone_polls_in_the_foreground_then_deactivates()
    {
        _runner.Output["lvs"] = "  swi---s---\n";
        await Writer().LvMergeSnapshotAsync("vg", "origin", "snap", TimeSpan.FromMinutes(7), TestContext.Current.CancellationToken);

        Assert.Equal(
            ["lvs --noheadings -o lv_attr vg/snap", "lvconvert --yes --merge vg/snap", "lvchange -ay --poll n vg/origin", "lvpoll --polloperation merge --interval 1 vg/origin", "lvchange -an vg/origin"],
            _runner.Commands);
        Assert.Equal(TimeSpan.FromMinutes(7), _runner.Timeouts[3]);
        Assert.All(_runner.Configs.Skip(1), c => Assert.Contains("activation{volume_list=[\"vg/origin\"]}", c, StringComparison.Ordinal));
        Assert.Contains("global{activation=0}", _runner.Configs[0], StringComparison.Ordinal);
        // The lease is checked right before each of the two commands that commit metadata.
        Assert.Equal(["1", "3"], _guarded);
    }

    [Fact]
    public async Task An_interrupted_merge_resumes_without_a_second_merge_and_a_finished_one_does_nothing()
    {
        _runner.Output["lvs"] = "  Swi---s---\n";
        await Writer().LvMergeSnapshotAsync("vg", "origin", "snap", TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken);
        Assert.DoesNotContain("lvconvert --yes --merge vg/snap", _runner.Commands);
        Assert.Contains("lvpoll --polloperation merge --interval 1 vg/origin", _runner.Commands);

        _runner.Commands.Clear();
        _runner.Fail["lvs"] = (5, "  Failed to find logical volume \"vg/snap\"");
        await Writer().LvMergeSnapshotAsync("vg", "origin", "snap", TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken);
        // Merged already: only the origin's deactivation is left (a retry after it failed).
        Assert.Equal(["lvs --noheadings -o lv_attr vg/snap", "lvchange -an vg/origin"], _runner.Commands);
    }

    [Fact]
    public async Task A_merge_that_fails_deactivates_the_origin_and_surfaces_the_merge_failure()
    {
        _runner.Output["lvs"] = "  swi---s---\n";
        _runner.Fail["lvpoll --polloperation"] = (5, "  Failed to merge.");
        var e = await Assert.ThrowsAsync<LvmException>(() => Writer().LvMergeSnapshotAsync("vg", "origin", "snap", TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken));
        Assert.Contains("Failed to merge", e.StandardError, StringComparison.Ordinal);
        Assert.Equal("lvchange -an vg/origin", _runner.Commands[^1]);
    }

    [Fact]
    public async Task A_split_is_metadata_only_and_activates_nothing()
    {
        await Writer().LvSplitSnapshotAsync("vg", "snap", TestContext.Current.CancellationToken);
        Assert.Equal(["lvconvert --yes --splitsnapshot vg/snap"], _runner.Commands);
        Assert.Contains("global{activation=0}", Assert.Single(_runner.Configs), StringComparison.Ordinal);
    }

    /// <summary>lvm invocations as "verb args" (the --config text apart), answered from canned outputs or failures.</summary>
    private sealed class RecordingRunner : IProcessRunner
    {
        public List<string> Commands { get; } = [];

        public List<string> Configs { get; } = [];

        public List<TimeSpan> Timeouts { get; } = [];

        /// <summary>By verb, or "verb first-argument": exit code and stderr.</summary>
        public Dictionary<string, (int Code, string Error)> Fail { get; } = [];

        public Dictionary<string, string> Output { get; } = [];

        public Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
        {
            Assert.Equal("lvm", spec.FileName);
            Assert.Equal("--config", spec.Arguments[1]);
            var verb = spec.Arguments[0];
            var rest = spec.Arguments.Skip(3).ToArray();
            Commands.Add(string.Join(' ', [verb, .. rest]));
            Configs.Add(spec.Arguments[2]);
            Timeouts.Add(spec.Timeout);
            var failure = Fail.TryGetValue(verb + " " + rest.FirstOrDefault(), out var f) || Fail.TryGetValue(verb, out f) ? f : ((int Code, string Error)?)null;
            return Task.FromResult(failure is { } x
                ? new ProcessResult(x.Code, string.Empty, x.Error, TimeSpan.Zero)
                : new ProcessResult(0, Output.GetValueOrDefault(verb, string.Empty), string.Empty, TimeSpan.Zero));
        }
    }
}
