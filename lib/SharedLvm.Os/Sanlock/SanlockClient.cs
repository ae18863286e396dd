namespace SharedLvm.Os.Sanlock;

/// <summary>A place on a shared device: sanlock addresses every lease by path and byte offset.</summary>
public sealed record SanlockDisk(string Path, ulong Offset);

public enum SanlockErrorKind
{
    /// <summary>Another live host holds the resource (or may: its delta lease has not expired yet).</summary>
    Held,
    /// <summary>The sanlock daemon is not running or refused the connection.</summary>
    NoDaemon,
    /// <summary>The call did not return within its timeout (a hung path under the lease area).</summary>
    Timeout,
    Failed,
}

/// <summary>A sanlock call failed: the typed exception at this OS boundary.</summary>
public sealed class SanlockException : Exception
{
    public SanlockException()
    {
    }

    public SanlockException(string message)
        : base(message)
    {
    }

    public SanlockException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public SanlockErrorKind Kind { get; init; } = SanlockErrorKind.Failed;

    /// <summary>sanlock's return value (negative errno or SANLK_ code).</summary>
    public int Code { get; init; }
}

/// <summary>The sanlock verbs SharedLvm's writer lease needs, behind an interface for the services' tests.</summary>
public interface ISanlock
{
    /// <summary>
    /// Writes a fresh lockspace and one resource. Only ever on an area nobody uses: it erases leases.
    /// The io_timeout is stored in the lockspace and a joining host waits by it (a lockspace written
    /// with the default 10 s took 21 s to join with io_timeout 1, 3 s when written with 1).
    /// </summary>
    Task FormatAsync(string lockspace, SanlockDisk lockspaceDisk, string resource, SanlockDisk resourceDisk, uint ioTimeoutSeconds, CancellationToken cancellationToken);

    /// <summary>Joins the lockspace as host <paramref name="hostId"/> (the delta lease: seconds); joined already is fine.</summary>
    Task JoinAsync(string lockspace, ulong hostId, SanlockDisk disk, uint ioTimeoutSeconds, CancellationToken cancellationToken);

    /// <summary>
    /// Acquires the resource for this process (the paxos lease). Throws <see cref="SanlockErrorKind.Held"/>
    /// while another host holds it. The lease is this process's until it exits or the lockspace is
    /// lost, when the daemon kills it.
    /// </summary>
    Task AcquireAsync(string lockspace, string resource, SanlockDisk disk, CancellationToken cancellationToken);
}

/// <summary>
/// libsanlock_client on a dedicated thread per call with a timeout: a call stuck on a dead path
/// leaves one thread behind, never a daemon that stops answering (invariant 5). This process
/// registers once; its leases live as long as that connection, so a crash frees them at once and a
/// lost lockspace gets it killed by the daemon.
/// </summary>
public sealed class SanlockClient(TimeSpan callTimeout) : ISanlock, IDisposable
{
    // sanlock_rv.h / errno: a live owner, an owner not yet known dead, a busy host id.
    private static readonly int[] HeldCodes = [-11, -243, -244, -247, -262];
    private readonly SemaphoreSlim _registration = new(1, 1);
    private int _socket = -1;

    public Task FormatAsync(string lockspace, SanlockDisk lockspaceDisk, string resource, SanlockDisk resourceDisk, uint ioTimeoutSeconds, CancellationToken cancellationToken) =>
        CallAsync("write_lockspace/resource", () =>
        {
            unsafe
            {
                fixed (byte* ls = SanlockNative.Lockspace(lockspace, 0, SanlockNative.LockspaceAlign1MSector4K, lockspaceDisk))
                {
                    Check("write_lockspace", SanlockNative.sanlock_write_lockspace(ls, 0, SanlockNative.LockspaceAlign1MSector4K, ioTimeoutSeconds));
                }

                fixed (byte* res = SanlockNative.Resource(lockspace, resource, SanlockNative.ResourceAlign1MSector4K, resourceDisk))
                {
                    Check("write_resource", SanlockNative.sanlock_write_resource(res, 0, 0, SanlockNative.ResourceAlign1MSector4K));
                }
            }
        }, cancellationToken);

    public Task JoinAsync(string lockspace, ulong hostId, SanlockDisk disk, uint ioTimeoutSeconds, CancellationToken cancellationToken) =>
        CallAsync("add_lockspace", () =>
        {
            unsafe
            {
                fixed (byte* ls = SanlockNative.Lockspace(lockspace, hostId, 0, disk))
                {
                    var rv = SanlockNative.sanlock_add_lockspace_timeout(ls, 0, ioTimeoutSeconds);
                    if (rv != -SanlockNative.Eexist)
                    {
                        Check("add_lockspace", rv);
                    }
                }
            }
        }, cancellationToken);

    public async Task AcquireAsync(string lockspace, string resource, SanlockDisk disk, CancellationToken cancellationToken)
    {
        var socket = await RegisterAsync(cancellationToken).ConfigureAwait(false);
        await CallAsync("acquire", () =>
        {
            unsafe
            {
                fixed (byte* res = SanlockNative.Resource(lockspace, resource, 0, disk))
                {
                    var list = stackalloc byte*[1];
                    list[0] = res;
                    Check("acquire", SanlockNative.sanlock_acquire(socket, -1, 0, 1, list, 0));
                }
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        // Closing the registration releases every lease this process holds.
        if (_socket >= 0)
        {
            _ = SanlockNative.close(_socket);
            _socket = -1;
        }

        _registration.Dispose();
    }

    private async Task<int> RegisterAsync(CancellationToken cancellationToken)
    {
        await _registration.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_socket < 0)
            {
                var socket = -1;
                await CallAsync("register", () =>
                {
                    socket = SanlockNative.sanlock_register();
                    if (socket < 0)
                    {
                        Check("register", socket);
                    }
                }, cancellationToken).ConfigureAwait(false);
                _socket = socket;
            }

            return _socket;
        }
        finally
        {
            _registration.Release();
        }
    }

    private async Task CallAsync(string what, Action call, CancellationToken cancellationToken)
    {
        var work = Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            await work.WaitAsync(callTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new SanlockException($"sanlock {what} did not return within {callTimeout.TotalSeconds:0} s (a hung path under the lease area?).", e) { Kind = SanlockErrorKind.Timeout };
        }
        catch (DllNotFoundException e)
        {
            throw new SanlockException("libsanlock_client.so.1 is not installed (Debian: libsanlock-client1).", e) { Kind = SanlockErrorKind.NoDaemon };
        }
    }

    private static void Check(string what, int rv)
    {
        if (rv >= 0)
        {
            return;
        }

        var kind = HeldCodes.Contains(rv) ? SanlockErrorKind.Held
            : rv is -2 or -111 or -13 ? SanlockErrorKind.NoDaemon // ENOENT/ECONNREFUSED/EACCES on the daemon's socket
            : SanlockErrorKind.Failed;
        throw new SanlockException($"sanlock {what}: {SanlockNative.Describe(rv)}.") { Kind = kind, Code = rv };
    }
}
