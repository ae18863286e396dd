namespace SharedLvm.Agent.Discovery;

/// <summary>
/// Reads a sysfs/udev tree under a root: "/" in production, a fixture directory in tests (the
/// SystemdNotifier pattern: a production constructor and one for tests). Missing or unreadable
/// attributes read as null: sysfs entries vanish under us whenever a device goes away.
/// </summary>
public sealed class SysfsTree
{
    public SysfsTree(string root = "/")
    {
        Root = root;
    }

    public string Root { get; }

    public string PathOf(string relative) => Path.Combine(Root, relative.TrimStart('/'));

    public string? Read(string relative)
    {
        try
        {
            return File.ReadAllText(PathOf(relative)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Entry names (files, directories or links) of a directory; empty when it is missing.</summary>
    public IReadOnlyList<string> List(string relative)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries(PathOf(relative)).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    public bool Exists(string relative) => Path.Exists(PathOf(relative));
}
