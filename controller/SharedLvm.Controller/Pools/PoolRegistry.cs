using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Fencing;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Writes;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Controller.Pools;

public enum PoolCreateMode
{
    Initialize,
    Adopt,
}

public sealed record CreatePoolCommand(string Name, string Wwid, string DevicePath, PoolCreateMode Mode, ulong MetadataSizeBytes, ulong ExtentSizeBytes,
    WipeOnDelete WipeOnDelete = WipeOnDelete.Zero);

/// <summary>The pools this controller manages: creating (pvcreate + vgcreate), adopting, forgetting.</summary>
public sealed class PoolRegistry : IAsyncDisposable
{
    public const ulong DefaultMetadataSize = 128UL * 1024 * 1024;
    public const ulong DefaultExtentSize = 4UL * 1024 * 1024;

    private readonly ConcurrentDictionary<string, PoolRuntime> _pools = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _poolChanges = new(1, 1);
    private readonly ControllerStore _store;
    private readonly IProcessRunner _runner;
    private readonly EventBus _events;
    private readonly FaultInjector _faults;
    private readonly ControllerOptions _options;
    private readonly IWriterLease _lease;
    private readonly WriteMetrics _writeMetrics;
    private readonly ControllerRegistration _registration;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;

    public PoolRegistry(ControllerStore store, IProcessRunner runner, EventBus events, FaultInjector faults, ControllerOptions options, IWriterLease lease, WriteMetrics writeMetrics,
        ControllerRegistration registration, ILoggerFactory loggers)
    {
        _registration = registration;
        _lease = lease;
        _writeMetrics = writeMetrics;
        _store = store;
        _runner = runner;
        _events = events;
        _faults = faults;
        _options = options;
        _loggers = loggers;
        _logger = loggers.CreateLogger<PoolRegistry>();
    }

    public IReadOnlyCollection<PoolRuntime> All => _pools.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToArray();

    public PoolRuntime Get(string name) =>
        _pools.TryGetValue(name, out var pool) ? pool : throw ControllerException.NotFound($"Pool '{name}' does not exist.");

    public bool TryGet(string name, out PoolRuntime pool) => _pools.TryGetValue(name, out pool!);

    /// <summary>The pool and record of a volume id, from the catalogues.</summary>
    public (PoolRuntime Pool, VolumeRecord Record)? Find(string volumeId)
    {
        foreach (var pool in _pools.Values)
        {
            if (pool.Catalog.Get(volumeId) is { } record)
            {
                return (pool, record);
            }
        }

        return null;
    }

    /// <summary>Loads every recorded pool; reconciles what a crash left pending in the journal.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.BackupDirectory);
        Directory.CreateDirectory(_options.ArchiveDirectory);
        foreach (var row in _store.Pools())
        {
            var runtime = NewRuntime(row);
            try
            {
                await _registration.EnsureAsync(row.Name, row.DevicePath, cancellationToken).ConfigureAwait(false);
                await runtime.StartAsync(cancellationToken).ConfigureAwait(false);
                _pools[row.Name] = runtime;
            }
            catch (Exception e) when (e is LvmException or ProcessTimeoutException)
            {
                // One unreachable LU must not keep the controller from serving the others.
                ControllerLog.PoolUnavailable(_logger, row.Name, row.DevicePath, e);
                _events.Alarm(row.Name, $"Pool {row.Name} could not be loaded from {row.DevicePath}: {e.Message}");
                await runtime.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The pools in this controller's records, loaded or not: a standby loads none until it holds the lease.</summary>
    public int KnownCount => _store.Pools().Count;

    public async Task<PoolRuntime> CreateAsync(CreatePoolCommand command, CancellationToken cancellationToken)
    {
        Validation.PoolName("name", command.Name);
        var device = ResolveDevice(command);
        var metadataSize = command.MetadataSizeBytes == 0 ? DefaultMetadataSize : command.MetadataSizeBytes;
        var extentSize = command.ExtentSizeBytes == 0 ? DefaultExtentSize : command.ExtentSizeBytes;
        if (extentSize < 1024 * 1024 || (extentSize & (extentSize - 1)) != 0)
        {
            throw ControllerException.Invalid($"extent_size_bytes {extentSize} must be a power of two of at least 1 MiB.");
        }

        if (!await _poolChanges.WaitAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
        {
            throw new ControllerException(ControllerErrorKind.Aborted, "Another pool operation is in flight; retry when it finishes.");
        }

        try
        {
            if (_pools.TryGetValue(command.Name, out var existing))
            {
                if (!string.Equals(existing.Row.DevicePath, device, StringComparison.Ordinal))
                {
                    throw new ControllerException(ControllerErrorKind.AlreadyExists, $"Pool '{command.Name}' already exists on {existing.Row.DevicePath}, not {device}.");
                }

                // A retry converges on what it asks. Its first attempt may have died after the pool's
                // lease area was made (pool.after_lease): a restart then found the pool by its area,
                // with the default policy (ZERO). And after a kill between the local catalogue and the
                // LU (pool.after_store), the marks must still carry the policy to a successor.
                if (existing.Row.WipeOnDelete != command.WipeOnDelete)
                {
                    SetWipeOnDelete(command.Name, command.WipeOnDelete);
                }

                await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
                return existing;
            }

            var other = _pools.Values.FirstOrDefault(p => string.Equals(p.Row.DevicePath, device, StringComparison.Ordinal));
            if (other is not null)
            {
                throw new ControllerException(ControllerErrorKind.AlreadyExists, $"Device {device} already backs pool '{other.Name}'.");
            }

            var row = new PoolRow(command.Name, command.Name, device, command.Wwid, command.WipeOnDelete);
            await _registration.EnsureAsync(row.Name, device, cancellationToken).ConfigureAwait(false);
            var runtime = NewRuntime(row);
            var lvm = Writer(row);
            var vgOnDevice = await runtime.Reader.PvVgNameAsync(device, cancellationToken).ConfigureAwait(false);
            if (command.Mode == PoolCreateMode.Initialize)
            {
                // Idempotent across a crash between pvcreate and vgcreate: a bare PV of ours continues,
                // a PV already in this VG is done, anything else on the device is refused.
                if (vgOnDevice is { Length: > 0 } && !string.Equals(vgOnDevice, command.Name, StringComparison.Ordinal))
                {
                    throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                        $"Device {device} already holds VG '{vgOnDevice}'; use mode ADOPT to take it over, or pick a blank LU.");
                }

                if (vgOnDevice is null)
                {
                    await lvm.PvCreateAsync(device, metadataSize, cancellationToken).ConfigureAwait(false);
                    _faults.Hit("pool.after_pvcreate");
                }

                if (vgOnDevice is not { Length: > 0 })
                {
                    await lvm.VgCreateAsync(command.Name, device, extentSize, cancellationToken).ConfigureAwait(false);
                    _faults.Hit("pool.after_vgcreate");
                }
            }
            else if (!string.Equals(vgOnDevice, command.Name, StringComparison.Ordinal))
            {
                throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                    vgOnDevice is { Length: > 0 }
                        ? $"Device {device} holds VG '{vgOnDevice}', not '{command.Name}'."
                        : $"Device {device} holds no VG to adopt; use mode INITIALIZE.");
            }

            await _lease.AddPoolAsync(row, cancellationToken).ConfigureAwait(false);
            _faults.Hit("pool.after_lease");
            _store.AddPool(row);
            _faults.Hit("pool.after_store");
            await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
            await runtime.StartAsync(cancellationToken).ConfigureAwait(false);
            _pools[row.Name] = runtime;
            ControllerLog.PoolAdded(_logger, row.Name, device, command.Mode.ToString());
            return runtime;
        }
        finally
        {
            _poolChanges.Release();
        }
    }

    /// <summary>Changes a pool's wipe policy; volumes already being wiped finish as they started.</summary>
    public PoolRuntime SetWipeOnDelete(string name, WipeOnDelete policy)
    {
        var pool = Get(name);
        var row = pool.Row with { WipeOnDelete = policy };
        _store.AddPool(row);
        pool.Update(row);
        ControllerLog.PoolPolicyChanged(_logger, name, policy.ToString());
        return pool;
    }

    /// <summary>Stops managing a pool; the VG stays on the LU untouched. Refused while volumes are attached.</summary>
    public async Task ForgetAsync(string name)
    {
        Validation.PoolName("name", name);
        if (_pools.TryGetValue(name, out var pool) && pool.Catalog.Snapshot().FirstOrDefault(v => v.Owners.Count > 0) is { } attached)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Pool {name} has attached volumes (e.g. {attached.Id} on {attached.Owners[0]}); detach them first.");
        }

        if (_pools.TryRemove(name, out var runtime))
        {
            _store.RemovePool(name);
            await runtime.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var pool in _pools.Values)
        {
            await pool.DisposeAsync().ConfigureAwait(false);
        }
    }

    private PoolRuntime NewRuntime(PoolRow row) =>
        new(row, new LvmReader(_runner, LvmConfigFor(row, _options), _options.LvmTimeout, _options.LvmBinary),
            pool => new PoolWriter(pool, Writer(row), _store, _faults, _options, _writeMetrics, _loggers.CreateLogger<PoolWriter>()),
            _store, _events, _options, _loggers.CreateLogger<PoolRuntime>());

    /// <summary>The pool's lvm writer: every metadata write first checks the writer lease on the disk.</summary>
    private LvmMetadataWriter Writer(PoolRow row) =>
        new(_runner, LvmConfigFor(row, _options), _options.LvmTimeout, _options.LvmBinary, ct => _lease.VerifyAsync(row.Name, ct));

    /// <summary>The controller's lvm sees the pool's PV only and never activates anything.</summary>
    public static LvmConfig LvmConfigFor(PoolRow row, ControllerOptions options) => new()
    {
        ActivationEnabled = false,
        Devices = [row.DevicePath],
        BackupDirectory = options.BackupDirectory,
        ArchiveDirectory = options.ArchiveDirectory,
        ArchiveRetainCount = options.ArchiveRetainCount,
    };

    private static string ResolveDevice(CreatePoolCommand command)
    {
        var hasWwid = !string.IsNullOrEmpty(command.Wwid);
        var hasPath = !string.IsNullOrEmpty(command.DevicePath);
        if (!hasWwid && !hasPath)
        {
            throw ControllerException.Invalid("Set wwid (the LU's WWID), device_path, or both.");
        }

        if (hasWwid)
        {
            Validation.Wwid("wwid", command.Wwid);
        }

        string device;
        if (!hasPath)
        {
            device = MultipathDevice.PathOf(command.Wwid);
        }
        else
        {
            device = command.DevicePath;
            if (!device.StartsWith("/dev/", StringComparison.Ordinal) || device.Contains("..", StringComparison.Ordinal))
            {
                throw ControllerException.Invalid($"device_path '{device}' must be an absolute path under /dev.");
            }
        }

        if (!File.Exists(device) && !Directory.Exists(device) && !Path.Exists(device))
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Device {device} does not exist on the controller host.");
        }

        return device;
    }
}
