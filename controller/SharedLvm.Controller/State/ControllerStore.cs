using System.Globalization;
using Microsoft.Data.Sqlite;
using SharedLvm.Controller.Catalog;

namespace SharedLvm.Controller.State;

public sealed record PoolRow(string Name, string VgName, string DevicePath, string Wwid, WipeOnDelete WipeOnDelete = WipeOnDelete.Zero);

public sealed record NodeRow(string Name, string Address, string State, string AgentVersion);

/// <summary>
/// A fence in progress or done. Phase: "preempting" (intent recorded, keys not yet confirmed gone),
/// "freeing" (FENCED, volumes being released), "done". Kind: "storage" or "declared".
/// </summary>
public sealed record FenceRow(string Node, string Phase, string Kind, string Trigger, string Reason, DateTimeOffset Since);

public sealed record OperationRow(long Id, string Kind, string Pool, string VolumeId, string Name, ulong SizeBytes, string Detail);

/// <summary>
/// The controller's local durable state (SQLite, WAL, synchronous=FULL): its epoch, the pools it
/// manages and the operation journal. Volumes themselves are not stored here: their truth is the
/// VG's LV names and tags on the shared LU.
/// </summary>
public sealed class ControllerStore : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly object _gate = new();
    private long _marksVersion;

    public ControllerStore(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("PRAGMA journal_mode=WAL;");
        // The journal is only worth having if a record survives a crash the moment after it is written.
        Execute("PRAGMA synchronous=FULL;");
        Execute("""
            CREATE TABLE IF NOT EXISTS epoch(id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL, controller_id TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS pools(name TEXT PRIMARY KEY, vg_name TEXT NOT NULL, device_path TEXT NOT NULL, wwid TEXT NOT NULL, created TEXT NOT NULL, wipe_on_delete TEXT NOT NULL DEFAULT 'Zero');
            CREATE TABLE IF NOT EXISTS data_progress(volume_id TEXT PRIMARY KEY, operation TEXT NOT NULL, done INTEGER NOT NULL, updated TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS operations(
                id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, pool TEXT NOT NULL, volume_id TEXT NOT NULL,
                name TEXT NOT NULL, size INTEGER NOT NULL, detail TEXT NOT NULL, state TEXT NOT NULL,
                started TEXT NOT NULL, finished TEXT, outcome TEXT);
            CREATE INDEX IF NOT EXISTS operations_pending ON operations(state) WHERE state = 'pending';
            CREATE TABLE IF NOT EXISTS attachment_progress(
                volume_id TEXT NOT NULL, node TEXT NOT NULL, phase TEXT NOT NULL, since TEXT NOT NULL,
                device_path TEXT, dm_name TEXT, major INTEGER, minor INTEGER, size INTEGER,
                PRIMARY KEY(volume_id, node));
            CREATE TABLE IF NOT EXISTS nodes(name TEXT PRIMARY KEY, address TEXT NOT NULL, state TEXT NOT NULL, agent_version TEXT NOT NULL, registered TEXT NOT NULL);
            """);
        AddColumnIfMissing("pools", "wipe_on_delete", "TEXT NOT NULL DEFAULT 'Zero'");
        // Reservation numbers are assigned once per node name and never reused: a key never moves to
        // another node, and nothing about it is derived from the name.
        Execute("CREATE TABLE IF NOT EXISTS reservation_numbers(node TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE, assigned TEXT NOT NULL);");
        Execute("CREATE TABLE IF NOT EXISTS fences(node TEXT PRIMARY KEY, phase TEXT NOT NULL, kind TEXT NOT NULL, trigger TEXT NOT NULL, reason TEXT NOT NULL, since TEXT NOT NULL);");
    }

    /// <summary>A state directory from before a column existed gets it, with its default.</summary>
    private void AddColumnIfMissing(string table, string column, string definition)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'";
        if ((long)command.ExecuteScalar()! == 0)
        {
            Execute($"ALTER TABLE {table} ADD COLUMN {column} {definition}");
        }
    }

    /// <summary>Takes the next epoch, durably, before the controller serves anything.</summary>
    /// <summary>
    /// Takes the next epoch, strictly above every one taken here before and above <paramref name="atLeast"/>
    /// (the epoch the lease area or the agents have seen: a state directory older than the cluster).
    /// </summary>
    public ulong TakeEpoch(string controllerId, ulong atLeast = 0)
    {
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            var current = Scalar("SELECT value FROM epoch WHERE id = 1", transaction) is long v ? (ulong)v : 0UL;
            var next = Math.Max(current, atLeast) + 1;
            Execute("INSERT INTO epoch(id, value, controller_id) VALUES(1, $v, $c) ON CONFLICT(id) DO UPDATE SET value = $v, controller_id = $c",
                transaction, ("$v", (long)next), ("$c", controllerId));
            transaction.Commit();
            return next;
        }
    }

    public IReadOnlyList<PoolRow> Pools()
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT name, vg_name, device_path, wwid, wipe_on_delete FROM pools ORDER BY name";
            using var reader = command.ExecuteReader();
            var rows = new List<PoolRow>();
            while (reader.Read())
            {
                rows.Add(new PoolRow(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                    Enum.TryParse<WipeOnDelete>(reader.GetString(4), out var wipe) ? wipe : WipeOnDelete.Zero));
            }

            return rows;
        }
    }

    public void AddPool(PoolRow pool)
    {
        lock (_gate)
        {
            Execute("INSERT OR REPLACE INTO pools(name, vg_name, device_path, wwid, created, wipe_on_delete) VALUES($n, $v, $d, $w, $t, $wipe)", null,
                ("$n", pool.Name), ("$v", pool.VgName), ("$d", pool.DevicePath), ("$w", pool.Wwid), ("$t", Now()), ("$wipe", pool.WipeOnDelete.ToString()));
            _marksVersion++;
        }
    }

    /// <summary>How far a clone's copy or a wipe got (a checkpoint to resume from after a restart; losing it only means starting over).</summary>
    public ulong DataProgress(string volumeId, string operation)
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT done FROM data_progress WHERE volume_id = $v AND operation = $o";
            command.Parameters.AddWithValue("$v", volumeId);
            command.Parameters.AddWithValue("$o", operation);
            return command.ExecuteScalar() is long done ? (ulong)done : 0;
        }
    }

    public void SaveDataProgress(string volumeId, string operation, ulong done)
    {
        lock (_gate)
        {
            Execute("INSERT INTO data_progress(volume_id, operation, done, updated) VALUES($v, $o, $d, $t) " +
                    "ON CONFLICT(volume_id) DO UPDATE SET operation = $o, done = $d, updated = $t", null,
                ("$v", volumeId), ("$o", operation), ("$d", (long)done), ("$t", Now()));
        }
    }

    public void ForgetDataProgress(string volumeId)
    {
        lock (_gate)
        {
            Execute("DELETE FROM data_progress WHERE volume_id = $v", null, ("$v", volumeId));
        }
    }

    public void RemovePool(string name)
    {
        lock (_gate)
        {
            Execute("DELETE FROM pools WHERE name = $n", null, ("$n", name));
            _marksVersion++;
        }
    }

    public IReadOnlyList<AttachmentRecord> Attachments()
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT volume_id, node, phase, since, device_path, dm_name, major, minor, size FROM attachment_progress";
            using var reader = command.ExecuteReader();
            var rows = new List<AttachmentRecord>();
            while (reader.Read())
            {
                var device = reader.IsDBNull(4)
                    ? null
                    : new AttachedDevice(reader.GetString(4), reader.GetString(5), (uint)reader.GetInt64(6), (uint)reader.GetInt64(7), (ulong)reader.GetInt64(8));
                rows.Add(new AttachmentRecord(reader.GetString(0), reader.GetString(1), Enum.Parse<AttachmentPhase>(reader.GetString(2)),
                    device, DateTimeOffset.Parse(reader.GetString(3), CultureInfo.InvariantCulture)));
            }

            return rows;
        }
    }

    /// <summary>Records an attachment's progress; a change into or out of ATTACHING/DETACHING is a change to the marks (<see cref="ClusterMarks.Attachments"/>).</summary>
    public void SaveAttachment(AttachmentRecord attachment)
    {
        lock (_gate)
        {
            if (IsInFlight(attachment.Phase) || IsInFlight(StoredPhase(attachment.VolumeId, attachment.Node)))
            {
                _marksVersion++;
            }

            var device = attachment.Device;
            Execute("INSERT INTO attachment_progress(volume_id, node, phase, since, device_path, dm_name, major, minor, size) " +
                    "VALUES($v, $n, $p, $t, $path, $dm, $major, $minor, $size) " +
                    "ON CONFLICT(volume_id, node) DO UPDATE SET phase = $p, device_path = $path, dm_name = $dm, major = $major, minor = $minor, size = $size", null,
                ("$v", attachment.VolumeId), ("$n", attachment.Node), ("$p", attachment.Phase.ToString()),
                ("$t", attachment.Since.ToString("O", CultureInfo.InvariantCulture)),
                ("$path", (object?)device?.Path ?? DBNull.Value), ("$dm", (object?)device?.DmName ?? DBNull.Value),
                ("$major", device is null ? DBNull.Value : (object)(long)device.Major), ("$minor", device is null ? DBNull.Value : (object)(long)device.Minor),
                ("$size", device is null ? DBNull.Value : (object)(long)device.SizeBytes));
        }
    }

    public void RemoveAttachment(string volumeId, string node)
    {
        lock (_gate)
        {
            if (IsInFlight(StoredPhase(volumeId, node)))
            {
                _marksVersion++;
            }

            Execute("DELETE FROM attachment_progress WHERE volume_id = $v AND node = $n", null, ("$v", volumeId), ("$n", node));
        }
    }

    private AttachmentPhase? StoredPhase(string volumeId, string node) =>
        Scalar("SELECT phase FROM attachment_progress WHERE volume_id = $v AND node = $n", null, ("$v", volumeId), ("$n", node)) is string phase
            ? Enum.Parse<AttachmentPhase>(phase)
            : null;

    private static bool IsInFlight(AttachmentPhase? phase) => phase is AttachmentPhase.Attaching or AttachmentPhase.Detaching;

    public IReadOnlyList<NodeRow> Nodes()
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT name, address, state, agent_version FROM nodes ORDER BY name";
            using var reader = command.ExecuteReader();
            var rows = new List<NodeRow>();
            while (reader.Read())
            {
                rows.Add(new NodeRow(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
            }

            return rows;
        }
    }

    /// <summary>Node state survives restarts: a FENCED or DRAINING mark must not be forgotten.</summary>
    public void SaveNode(NodeRow node)
    {
        lock (_gate)
        {
            var stored = StoredState(node.Name, null);
            if (stored != node.State && (IsMark(stored) || IsMark(node.State)))
            {
                _marksVersion++;
            }

            Execute("INSERT INTO nodes(name, address, state, agent_version, registered) VALUES($n, $a, $s, $v, $t) " +
                    "ON CONFLICT(name) DO UPDATE SET address = $a, state = $s, agent_version = $v", null,
                ("$n", node.Name), ("$a", node.Address), ("$s", node.State), ("$v", node.AgentVersion), ("$t", Now()));
        }
    }

    /// <summary>The node's reservation number, assigned the first time it is asked for (1, 2, ...), durably.</summary>
    public uint ReservationNumber(string node)
    {
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            using var command = _connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "SELECT number FROM reservation_numbers WHERE node = $n";
            command.Parameters.AddWithValue("$n", node);
            if (command.ExecuteScalar() is long existing)
            {
                return (uint)existing;
            }

            var next = Scalar("SELECT COALESCE(MAX(number), 0) + 1 FROM reservation_numbers", transaction) is long n ? n : 1;
            InsertReservationNumber(node, next, transaction);
            transaction.Commit();
            _marksVersion++;
            return (uint)next;
        }
    }

    public IReadOnlyDictionary<string, uint> ReservationNumbers()
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT node, number FROM reservation_numbers";
            using var reader = command.ExecuteReader();
            var numbers = new Dictionary<string, uint>(StringComparer.Ordinal);
            while (reader.Read())
            {
                numbers[reader.GetString(0)] = (uint)reader.GetInt64(1);
            }

            return numbers;
        }
    }

    public IReadOnlyList<FenceRow> Fences()
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT node, phase, kind, trigger, reason, since FROM fences ORDER BY node";
            using var reader = command.ExecuteReader();
            var rows = new List<FenceRow>();
            while (reader.Read())
            {
                rows.Add(new FenceRow(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                    DateTimeOffset.Parse(reader.GetString(5), CultureInfo.InvariantCulture)));
            }

            return rows;
        }
    }

    public void SaveFence(FenceRow fence)
    {
        lock (_gate)
        {
            UpsertFence(fence, null);
            _marksVersion++;
        }
    }

    public void RemoveFence(string node)
    {
        lock (_gate)
        {
            Execute("DELETE FROM fences WHERE node = $n", null, ("$n", node));
            _marksVersion++;
        }
    }

    /// <summary>Rises with every change to what <see cref="ExportMarks"/> returns: whether the copy on the LU is behind.</summary>
    public long MarksVersion
    {
        get
        {
            lock (_gate)
            {
                return _marksVersion;
            }
        }
    }

    /// <summary>What must outlive this state directory (<see cref="ClusterMarks"/>), epoch and sequence left for the writer to set.</summary>
    public (ClusterMarks Marks, long Version) ExportMarks()
    {
        lock (_gate)
        {
            var numbers = ReservationNumbers();
            var rows = Nodes().ToDictionary(n => n.Name, StringComparer.Ordinal);
            var fences = Fences().ToDictionary(f => f.Node, StringComparer.Ordinal);
            var nodes = numbers.Keys.Union(rows.Keys).Union(fences.Keys).Order(StringComparer.Ordinal).Select(name =>
            {
                var row = rows.GetValueOrDefault(name);
                return new NodeMark(name, numbers.TryGetValue(name, out var number) ? number : null, row?.Address ?? string.Empty,
                    row?.AgentVersion ?? string.Empty, IsMark(row?.State) ? row!.State : string.Empty, fences.GetValueOrDefault(name));
            }).ToArray();
            var pools = Pools().Select(p => new PoolMark(p.Name, p.WipeOnDelete.ToString())).ToArray();
            var attachments = Attachments().Where(a => IsInFlight(a.Phase)).OrderBy(a => (a.VolumeId, a.Node))
                .Select(a => new AttachmentMark(a.VolumeId, a.Node, a.Phase.ToString(), a.Since)).ToArray();
            return (new ClusterMarks(0, 0, nodes, pools) { Attachments = attachments }, _marksVersion);
        }
    }

    /// <summary>
    /// Takes the marks found on the LU over this state directory's: for every node they name, its
    /// reservation number, its mark and its fence record are theirs (the active controller writes them
    /// there before acting on a change, so they are never older than a state directory's); nodes they
    /// don't name are kept. A local number that another node holds on the LU is dropped (its node gets
    /// a new one at its next registration). Pool policies apply to the pools this directory has. The
    /// attaches and detaches in flight are the LU's: a local one it does not name never reached an
    /// owner tag (its mark is written first) or was settled by a later controller.
    /// </summary>
    public void ImportMarks(ClusterMarks marks)
    {
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var node in marks.Nodes)
            {
                Execute("DELETE FROM reservation_numbers WHERE node = $n", transaction, ("$n", node.Name));
                if (node.ReservationNumber is { } number)
                {
                    Execute("DELETE FROM reservation_numbers WHERE number = $k", transaction, ("$k", (long)number));
                    InsertReservationNumber(node.Name, number, transaction);
                }

                var stored = StoredState(node.Name, transaction);
                var state = IsMark(node.Mark) ? node.Mark : IsMark(stored) || stored is null ? nameof(Catalog.NodeLiveness.Unreachable) : stored;
                Execute("INSERT INTO nodes(name, address, state, agent_version, registered) VALUES($n, $a, $s, $v, $t) " +
                        "ON CONFLICT(name) DO UPDATE SET state = $s", transaction,
                    ("$n", node.Name), ("$a", node.Address), ("$s", state), ("$v", node.AgentVersion), ("$t", Now()));
                if (node.Fence is { } fence)
                {
                    UpsertFence(fence with { Node = node.Name }, transaction);
                }
                else
                {
                    Execute("DELETE FROM fences WHERE node = $n", transaction, ("$n", node.Name));
                }
            }

            foreach (var pool in marks.Pools)
            {
                if (Enum.TryParse<WipeOnDelete>(pool.WipeOnDelete, out var wipe))
                {
                    Execute("UPDATE pools SET wipe_on_delete = $wipe WHERE name = $n", transaction, ("$n", pool.Name), ("$wipe", wipe.ToString()));
                }
            }

            if (marks.Attachments is { } inFlight)
            {
                Execute("DELETE FROM attachment_progress WHERE phase IN ('Attaching', 'Detaching')", transaction);
                foreach (var attachment in inFlight.Where(a => Enum.TryParse<AttachmentPhase>(a.Phase, out var phase) && IsInFlight(phase)))
                {
                    Execute("INSERT INTO attachment_progress(volume_id, node, phase, since) VALUES($v, $n, $p, $t) ON CONFLICT(volume_id, node) DO UPDATE SET phase = $p",
                        transaction, ("$v", attachment.VolumeId), ("$n", attachment.Node), ("$p", attachment.Phase),
                        ("$t", attachment.Since.ToString("O", CultureInfo.InvariantCulture)));
                }
            }

            transaction.Commit();
            _marksVersion++;
        }
    }

    private string? StoredState(string node, SqliteTransaction? transaction) =>
        Scalar("SELECT state FROM nodes WHERE name = $n", transaction, ("$n", node)) as string;

    private void InsertReservationNumber(string node, long number, SqliteTransaction transaction) =>
        Execute("INSERT INTO reservation_numbers(node, number, assigned) VALUES($n, $k, $t)", transaction, ("$n", node), ("$k", number), ("$t", Now()));

    private void UpsertFence(FenceRow fence, SqliteTransaction? transaction) =>
        Execute("INSERT INTO fences(node, phase, kind, trigger, reason, since) VALUES($n, $p, $k, $g, $r, $t) " +
                "ON CONFLICT(node) DO UPDATE SET phase = $p, kind = $k, trigger = $g, reason = $r, since = $t", transaction,
            ("$n", fence.Node), ("$p", fence.Phase), ("$k", fence.Kind), ("$g", fence.Trigger), ("$r", fence.Reason),
            ("$t", fence.Since.ToString("O", CultureInfo.InvariantCulture)));

    private static bool IsMark(string? state) => state is nameof(Catalog.NodeLiveness.Fenced) or nameof(Catalog.NodeLiveness.Draining);

    /// <summary>Writes intent before acting; a crash after this leaves a pending row to reconcile.</summary>
    public long BeginOperation(string kind, string pool, string volumeId, string name, ulong sizeBytes, string detail = "")
    {
        lock (_gate)
        {
            Execute("INSERT INTO operations(kind, pool, volume_id, name, size, detail, state, started) VALUES($k, $p, $v, $n, $s, $d, 'pending', $t)", null,
                ("$k", kind), ("$p", pool), ("$v", volumeId), ("$n", name), ("$s", (long)sizeBytes), ("$d", detail), ("$t", Now()));
            return (long)Scalar("SELECT last_insert_rowid()", null)!;
        }
    }

    /// <summary>
    /// <see cref="BeginOperation"/> for every write of a batched commit, in one transaction: one
    /// fsync (synchronous=FULL) instead of one per write, all rows pending or none.
    /// </summary>
    public IReadOnlyList<long> BeginOperations(IReadOnlyList<(string Kind, string Pool, string VolumeId, string Name, ulong SizeBytes, string Detail)> operations)
    {
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            var ids = new List<long>(operations.Count);
            foreach (var (kind, pool, volumeId, name, size, detail) in operations)
            {
                Execute("INSERT INTO operations(kind, pool, volume_id, name, size, detail, state, started) VALUES($k, $p, $v, $n, $s, $d, 'pending', $t)", transaction,
                    ("$k", kind), ("$p", pool), ("$v", volumeId), ("$n", name), ("$s", (long)size), ("$d", detail), ("$t", Now()));
                ids.Add((long)Scalar("SELECT last_insert_rowid()", transaction)!);
            }

            transaction.Commit();
            return ids;
        }
    }

    /// <summary><see cref="FinishOperation"/> for several entries, in one transaction.</summary>
    public void FinishOperations(IReadOnlyList<(long Id, string Outcome)> outcomes)
    {
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var (id, outcome) in outcomes)
            {
                Execute("UPDATE operations SET state = 'done', finished = $t, outcome = $o WHERE id = $i", transaction,
                    ("$t", Now()), ("$o", outcome), ("$i", id));
            }

            transaction.Commit();
        }
    }

    public void FinishOperation(long id, string outcome)
    {
        lock (_gate)
        {
            Execute("UPDATE operations SET state = 'done', finished = $t, outcome = $o WHERE id = $i", null,
                ("$t", Now()), ("$o", outcome), ("$i", id));
        }
    }

    public IReadOnlyList<OperationRow> PendingOperations(string pool)
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT id, kind, pool, volume_id, name, size, detail FROM operations WHERE state = 'pending' AND pool = $p ORDER BY id";
            command.Parameters.AddWithValue("$p", pool);
            using var reader = command.ExecuteReader();
            var rows = new List<OperationRow>();
            while (reader.Read())
            {
                rows.Add(new OperationRow(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                    reader.GetString(4), (ulong)reader.GetInt64(5), reader.GetString(6)));
            }

            return rows;
        }
    }

    /// <summary>Keeps the journal bounded: finished operations older than the retention are deleted.</summary>
    public int PruneOperations(TimeSpan retention)
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "DELETE FROM operations WHERE state = 'done' AND finished < $t";
            command.Parameters.AddWithValue("$t", (DateTimeOffset.UtcNow - retention).ToString("O", CultureInfo.InvariantCulture));
            return command.ExecuteNonQuery();
        }
    }

    public void Dispose() => _connection.Dispose();

    private static string Now() => DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);

    private void Execute(string sql, SqliteTransaction? transaction = null, params (string Name, object Value)[] parameters)
    {
        using var command = Command(sql, transaction, parameters);
        command.ExecuteNonQuery();
    }

    private object? Scalar(string sql, SqliteTransaction? transaction, params (string Name, object Value)[] parameters)
    {
        using var command = Command(sql, transaction, parameters);
        return command.ExecuteScalar();
    }

    private SqliteCommand Command(string sql, SqliteTransaction? transaction, (string Name, object Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }
}
