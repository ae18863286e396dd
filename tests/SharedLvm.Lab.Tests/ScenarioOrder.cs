using Xunit.Sdk;
using Xunit.v3;

namespace SharedLvm.Lab.Tests;

/// <summary>
/// Scenarios run in the order of their names (S1_, S2_...): the last ones power a node off. xunit v3
/// orders test methods with a method orderer (a test case orderer only orders the cases of one
/// method: with it alone, S9 powered node-a off before S1 ran).
/// </summary>
public sealed class ScenarioOrder : ITestMethodOrderer, ITestCaseOrderer
{
    public IReadOnlyCollection<TTestMethod?> OrderTestMethods<TTestMethod>(IReadOnlyCollection<TTestMethod?> testMethods)
        where TTestMethod : notnull, ITestMethod =>
        testMethods.OrderBy(m => m?.MethodName, StringComparer.Ordinal).ToArray();

    public IReadOnlyCollection<TTestCase> OrderTestCases<TTestCase>(IReadOnlyCollection<TTestCase> testCases)
        where TTestCase : notnull, ITestCase =>
        testCases.OrderBy(t => t.TestMethodName, StringComparer.Ordinal).ToArray();
}
