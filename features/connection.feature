Feature: Staying connected
  Tokens refresh silently, status stays real-time and the connection persists for a shift.

  @C2C-NET-02 @evidence-doc
  Scenario: Access tokens are refreshed without user interaction
    Given a paired device
    And the device's status is watched for user alerts
    And the cloud issues access tokens that expire after 10 seconds
    When the device stays connected for 35 seconds while 2 "jpg" files are captured
    Then the device refreshed its token at least 3 times
    And the device showed no user alert about authorization
    And every captured file arrives intact within 60 seconds

  @C2C-SOCK-01 @evidence-doc
  Scenario: The device keeps real-time status during a long idle period
    Given a paired device
    When the device stays idle for at least 60 seconds of real time
    Then the device kept real-time status with no gap over 300 seconds

  @C2C-QA-05 @evidence-doc
  Scenario: The connection persists for an 8-hour shift
    Given a paired device
    And the cloud issues access tokens that expire after 30 seconds
    When 8 hours of cloud time pass in 30 seconds while files are captured every 10 seconds
    Then the device refreshed its token after every clock jump
    And every captured file arrives intact within 120 seconds
    And the device requested no new pairing code
