Feature: Pairing and authorization
  A device pairs with a six-digit code (OAuth device flow), shows the project it is
  connected to, and handles every answer the authorization server can give.

  @C2C-AUTH-01 @smoke @evidence-doc
  Scenario: A fresh device shows a six-digit pairing code
    Given a fresh unpaired device
    When the device requests a pairing code
    Then the device shows a 6-digit pairing code the cloud issued

  @C2C-AUTH-02 @evidence-doc
  Scenario: The device offers the complete verification URL when URL pairing is enabled
    Given URL pairing is enabled in the cloud
    And a fresh unpaired device
    When the device requests a pairing code
    Then the device offers the complete verification URL the cloud issued

  @C2C-AUTH-03 @evidence-doc
  Scenario Outline: Pairing can be cancelled at every step
    Given a fresh unpaired device
    When the device requests a pairing code
    And the pairing is cancelled <when>
    Then the cloud sees no more token polls from the device within 20 seconds
    And the device does not show itself as paired

    Examples:
      | when                    |
      | while the code is shown |
      | while polling           |

  @C2C-AUTH-03 @evidence-doc
  Scenario: Pairing cancelled after approval leaves the device unpaired and the grant dead
    Given a fresh unpaired device
    When the device requests a pairing code
    And the pairing is cancelled after approval
    Then the cloud sees the approved grant revoked within 20 seconds
    And the cloud sees no call with the cancelled grant for 20 seconds
    And the device shows itself as not paired and holding no token

  @C2C-AUTH-04 @evidence-spec
  Scenario Outline: The device handles pairing errors and requests a new code
    Given the cloud answers token polls with "<error>"
    And a fresh unpaired device
    When the device requests a pairing code
    Then the device shows a pairing code again within 60 seconds
    And the device collects its tokens itself once the code is approved

    Examples:
      | error         |
      | expired_token |
      | slow_down     |
      | access_denied |

  @C2C-PROJ-01 @C2C-QA-03 @smoke @evidence-doc
  Scenario: The device shows the connected project name
    Given a paired device
    Then the device shows the project name
    When the cloud renames the project to "Renamed by the bench"
    Then the device shows the project name "Renamed by the bench" within 60 seconds

  @C2C-NETW-05 @evidence-doc
  Scenario: The device switches networks without re-pairing
    Given a paired device
    When 3 "jpg" files are captured
    And the network path switches
    And 2 "jpg" files are captured
    Then every captured file arrives intact within 120 seconds
    And the device requested no new pairing code
